package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// maxReplayLinks bounds the links of one replay span to the traces of the
// events it sends.
const maxReplayLinks = 32

// errOverflow is returned by a replay whose subscription overflowed.
var errOverflow = errors.New("subscriber too slow")

// A Subscription is one sink's registration in the Hub. Its methods are safe
// for concurrent use, but replays (Subscribe and Join with a cursor) must
// not run concurrently for one subscription.
type Subscription struct {
	hub  *Hub
	sink Sink
	user string

	channels map[string]struct{} // guarded by hub.mu

	// mu guards holding, closed, hasFloor, held, floor. Lock order:
	// Hub.mu, then mu, then the sink's own locks (the fan-out calls
	// Sink.Send with both held). Never take Hub.mu with mu held.
	// deliver reads mu, holding, closed and hasFloor for every event:
	// they share sink's cache line; held and floor are read only when
	// holding or hasFloor.
	mu       sync.Mutex
	holding  bool
	closed   bool
	hasFloor bool       // floor is not zero
	held     []Delivery // a zero Delivery stands for a Reset
	// floor is the last cursor the connect-time replay covered: live
	// events at or before it were already sent (or processed by the
	// client before it resumed) and are dropped, so a replica whose
	// reader lags cannot repeat them out of order.
	floor Cursor
}

// matches reports whether ev is for this subscription. It takes hub.mu.
func (s *Subscription) matches(ev *Event) bool {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return ev.matches(s.user, func(ch string) bool { _, ok := s.channels[ch]; return ok })
}

// ChannelCount returns how many channels s is subscribed to.
func (s *Subscription) ChannelCount() int {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return len(s.channels)
}

// Channels returns the channels s is subscribed to.
func (s *Subscription) Channels() []string {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	names := make([]string, 0, len(s.channels))
	for ch := range s.channels {
		names = append(names, ch)
	}
	return names
}

// Subscribed reports whether s is subscribed to channel.
func (s *Subscription) Subscribed(channel string) bool {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	_, ok := s.channels[channel]
	return ok
}

// Join subscribes s to channel. With a non-zero since it first replays the
// channel's retained events after since, as Subscribe does; events of the
// subscription's other channels and user keep their order around it.
// registered, when not nil, is called as SubscribeRequest.Registered is:
// without the Hub's lock, before any event of channel is sent.
func (s *Subscription) Join(ctx context.Context, channel string, since Cursor, registered func()) error {
	h := s.hub
	s.mu.Lock()
	s.holding = true
	s.mu.Unlock()
	h.mu.Lock()
	if _, ok := s.channels[channel]; !ok {
		if s.channels == nil {
			s.channels = make(map[string]struct{}, 1)
		}
		s.channels[channel] = struct{}{}
		h.add(h.byChan, channel, s)
	}
	h.mu.Unlock()
	if registered != nil {
		registered()
	}
	if since.IsZero() {
		return s.releaseHeld(ctx, Cursor{}, nil, onJoin)
	}
	q := HistoryQuery{Since: since, User: s.user, Channels: []string{channel}}
	return s.replay(ctx, q, func(ev *Event) bool { return ev.Channel == channel && s.matches(ev) }, onJoin)
}

// Leave unsubscribes s from channel.
func (s *Subscription) Leave(channel string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := s.channels[channel]; ok {
		delete(s.channels, channel)
		h.remove(h.byChan, channel, s)
	}
}

// Close removes s from the hub. It is idempotent.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	h.remove(h.byUser, s.user, s)
	for ch := range s.channels {
		h.remove(h.byChan, ch, s)
	}
	h.mu.Unlock()
	s.mu.Lock()
	s.dropHeld(ErrConnClosed)
	s.closed, s.holding = true, false
	s.mu.Unlock()
}

// deliver is called by the fan-out with hub.mu read-locked.
func (s *Subscription) deliver(d Delivery) {
	ev := d.Event
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
	case s.hasFloor && ev.Cursor.Epoch == s.floor.Epoch && !s.floor.Before(ev.Cursor):
		// Already replayed, or processed by the client before it resumed.
	case s.holding:
		if len(s.held) >= s.hub.maxHeld {
			s.dropHeld(ErrSlowConsumer)
			s.holding, s.closed = false, true
			s.sink.Overflow()
			return
		}
		d.handoff()
		s.held = append(s.held, d)
	default:
		d.handoff()
		s.sink.Send(d)
	}
}

// dropHeld ends the held events' deliveries. s.mu is held.
func (s *Subscription) dropHeld(err error) {
	for _, d := range s.held {
		if d.Event != nil {
			d.Done(err)
		}
	}
	s.held = nil
}

func (s *Subscription) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.floor, s.hasFloor = Cursor{}, false
	if s.holding {
		// The replay in progress will see ErrHistoryExpired or the
		// new epoch; hold the reset back until then.
		s.held = append(s.held, Delivery{})
		return
	}
	s.sink.Reset(ResetHistoryExpired)
}

// catchUp says which catch-up a replay or a release of held events is.
type catchUp uint8

const (
	// onSubscribe: the whole subscription's; the floor the replay reached
	// becomes the subscription's floor.
	onSubscribe catchUp = iota
	// onJoin: one joined channel's; only that channel's held events (want)
	// are covered by the replay, and the subscription's floor stays.
	onJoin
)

// replay sends the history selected by q and want, then releases the held
// live events. onSubscribe, it also raises the subscription's floor.
func (s *Subscription) replay(ctx context.Context, q HistoryQuery, want func(*Event) bool, kind catchUp) error {
	floor, err := s.sendHistory(ctx, q, want)
	if err != nil {
		return err
	}
	return s.releaseHeld(ctx, floor, want, kind)
}

// sendHistory sends the retained events selected by q and want, page by
// page, and returns the floor: the last cursor the history read covered
// (zero when the history had expired, and the sink got a Reset).
func (s *Subscription) sendHistory(ctx context.Context, q HistoryQuery, want func(*Event) bool) (floor Cursor, err error) {
	since := q.Since
	ctx, span := s.hub.tracer.Start(ctx, "replay", trace.WithAttributes(
		attribute.String("hookwire.since", since.String()),
		attribute.Int("hookwire.channels", len(q.Channels)),
	))
	sent := 0
	result := "replayed"
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			result = "error"
		}
		span.SetAttributes(attribute.Int("hookwire.replayed", sent), attribute.String("hookwire.result", result))
		span.End()
		s.hub.replays.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
	}()
	last := Cursor{} // the last position the replay read up to
	q.Limit = s.hub.page
	for {
		evs, err := s.hub.history.History(ctx, q)
		if errors.Is(err, ErrHistoryExpired) {
			result = "reset"
			s.sink.Reset(ResetHistoryExpired)
			return Cursor{}, nil
		}
		if err != nil {
			return Cursor{}, fmt.Errorf("replay after %s: %w", q.Since, err)
		}
		for _, ev := range evs {
			if want(ev) {
				if sent < maxReplayLinks && len(ev.Trace) > 0 {
					// Tie the replay to the traces of the events it
					// sends, so each event's trace shows it.
					ectx := s.hub.propagator.Extract(ctx, propagation.MapCarrier(ev.Trace))
					if sc := trace.SpanContextFromContext(ectx); sc.IsRemote() {
						span.AddLink(trace.Link{SpanContext: sc})
					}
				}
				if err := s.sink.SendWait(ctx, Delivery{Event: ev}); err != nil {
					return Cursor{}, err
				}
				sent++
			}
			last = ev.Cursor
			q.Since = ev.Cursor
		}
		if len(evs) < q.Limit {
			break
		}
	}
	// The last read covered every selected event up to the head at that
	// moment, so a held event at or before max(since, last) was sent.
	if !last.IsZero() && since.Before(last) {
		return last, nil
	}
	return since, nil
}

// releaseHeld sends the live events held since the registration, until
// none is left, and then lets live events through. Held events at or
// before floor were sent by the replay (or processed by the client before
// it resumed) and are dropped; want, when the replay was a Join's, limits
// that to the joined channel's (onJoin). onSubscribe, floor becomes the
// subscription's floor.
func (s *Subscription) releaseHeld(ctx context.Context, floor Cursor, want func(*Event) bool, kind catchUp) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return errOverflow
		}
		batch := s.held
		s.held = nil
		if len(batch) == 0 {
			s.holding = false
			if kind == onSubscribe {
				s.floor, s.hasFloor = floor, !floor.IsZero()
			}
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		for i, d := range batch {
			ev := d.Event
			if ev == nil { // a Reset that arrived while holding
				floor = Cursor{}
				s.sink.Reset(ResetHistoryExpired)
				continue
			}
			// A Join replays one channel only, so other held events
			// are kept.
			if !floor.IsZero() && ev.Cursor.Epoch == floor.Epoch && !floor.Before(ev.Cursor) && (kind == onSubscribe || want(ev)) {
				d.covered()
				continue
			}
			if err := s.sink.SendWait(ctx, d); err != nil {
				for _, rest := range batch[i:] {
					if rest.Event != nil {
						rest.Done(err)
					}
				}
				return err
			}
		}
	}
}
