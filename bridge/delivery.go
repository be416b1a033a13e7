package bridge

// A Delivery is one event on its way to one subscription's sink: the
// shared, read-only Event and what this delivery alone knows of it. It is a
// small value, passed and copied freely; the fan-out makes one per event
// and the replay one per replayed event, and neither allocates.
type Delivery struct {
	Event *Event
	// fanout follows the event's traced fan-out on this replica; it is
	// untraced for a live event that is not traced, and nil for replays.
	fanout *fanout
}

// untraced is the fanout of every live delivery that is not traced: two
// words make a Delivery, and it is passed by value on every delivery.
var untraced = new(fanout)

// Live reports whether the event reached this replica as it was appended
// (its age at delivery is the delivery latency), not read from history by
// a replay.
func (d Delivery) Live() bool { return d.fanout != nil }

// traced returns the fanout to account to, or nil.
func (d Delivery) traced() *fanout {
	if d.fanout == untraced {
		return nil
	}
	return d.fanout
}

// Done tells the event's fan-out that one sink finished with it: err is nil
// when its frame was written to the connection, else why it was not
// (written too late, connection closed, too slow). A Sink calls Done once
// for every Delivery passed to Send or SendWait. It is cheap and safe for
// concurrent use.
func (d Delivery) Done(err error) {
	if f := d.traced(); f != nil {
		f.done(err)
	}
}

// handoff counts one more sink that will call d.Done.
func (d Delivery) handoff() {
	if f := d.traced(); f != nil {
		f.handoff()
	}
}

// covered ends a held delivery's handoff without a write of its own: the
// connection's replay already sent the event (or the client had it before
// it resumed), so for this connection it counts as written.
func (d Delivery) covered() { d.Done(nil) }
