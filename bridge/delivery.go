package bridge

// A Delivery is one event on its way to one subscription's sink: the
// shared, read-only Event and what this delivery alone knows of it. It is a
// small value, passed and copied freely; the fan-out makes one per event
// and the replay one per replayed event, and neither allocates.
type Delivery struct {
	Event *Event
	// Live is set when the event reached this replica as it was appended
	// (its age at delivery is the delivery latency), unset when a replay
	// read it from history.
	Live bool
	// fanout follows the event's traced fan-out on this replica; nil when
	// it is not traced, and for replays.
	fanout *fanout
}

// Done tells the event's fan-out that one sink finished with it: err is nil
// when its frame was written to the connection, else why it was not
// (written too late, connection closed, too slow). A Sink calls Done once
// for every Delivery passed to Send or SendWait. It is cheap and safe for
// concurrent use.
func (d Delivery) Done(err error) {
	if d.fanout != nil {
		d.fanout.done(err)
	}
}

// handoff counts one more sink that will call d.Done.
func (d Delivery) handoff() {
	if d.fanout != nil {
		d.fanout.handoff()
	}
}

// covered ends a held delivery's handoff without a write of its own: the
// connection's replay already sent the event (or the client had it before
// it resumed), so for this connection it counts as written.
func (d Delivery) covered() { d.Done(nil) }
