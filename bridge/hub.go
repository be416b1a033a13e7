package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// A Sink receives the events of one subscription: in hookwire, one
// WebSocket connection's outgoing queue.
type Sink interface {
	// Send queues d without blocking. A sink whose queue is full closes
	// itself (the client resumes with its last cursor); it never makes
	// the fan-out wait.
	Send(d Delivery)
	// SendWait queues d, waiting for room until ctx is done. Replays
	// use it: they run on the subscriber's own goroutine. When it
	// returns an error, the sink did not take d (and will not call
	// d.Done).
	SendWait(ctx context.Context, d Delivery) error
	// Reset tells the subscriber that events it should have had may be
	// lost, so it must reload its state.
	Reset(reason string)
	// Overflow tells the sink it fell too far behind: it must close (the
	// client resumes with its last cursor).
	Overflow()
}

// A Sink calls d.Done once for every Delivery passed to Send or SendWait,
// when the event was written or dropped.

// ResetHistoryExpired is the reason of a Reset when the history no longer
// reaches back to the requested cursor, or the broker lost it.
const ResetHistoryExpired = "history_expired"

// historian is the part of Stream that subscriptions replay from.
type historian interface {
	History(ctx context.Context, q HistoryQuery) ([]*Event, error)
}

// HubOptions tune a Hub. Zero values mean the defaults.
type HubOptions struct {
	Logger *slog.Logger
	// ReplayPage is how many events one History call returns (default 500).
	ReplayPage int
	// MaxHeld bounds the live events held back for a subscription while
	// its history is replayed (default 4096); past it the sink gets
	// Overflow.
	MaxHeld int
	// TracerProvider traces the fan-out of each event ("process" spans)
	// and replays; nil means none.
	TracerProvider trace.TracerProvider
	// Propagator extracts the trace context carried in each event
	// (default W3C trace context).
	Propagator propagation.TextMapPropagator
	// MeterProvider counts resumes and resets; nil means none.
	MeterProvider metric.MeterProvider
	// Destination names the stream in spans (default "hookwire").
	Destination string
}

// Hub routes every event the replica reads to the subscriptions it matches.
// It indexes subscriptions by user and by channel, so routing one event costs
// the number of its recipients, never a scan of every connection. It is safe
// for concurrent use.
type Hub struct {
	history     historian
	logger      *slog.Logger
	page        int
	maxHeld     int
	tracer      trace.Tracer
	tracing     bool // a TracerProvider was given: make process spans
	propagator  propagation.TextMapPropagator
	destination string
	replays     metric.Int64Counter
	resets      metric.Int64Counter

	mu     sync.RWMutex // guards byUser, byChan and every Subscription.channels
	byUser map[string]map[*Subscription]struct{}
	byChan map[string]map[*Subscription]struct{}
}

// NewHub returns a Hub that replays history from h.
func NewHub(h historian, opts HubOptions) *Hub {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReplayPage <= 0 {
		opts.ReplayPage = 500
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = 4096
	}
	tracing := opts.TracerProvider != nil
	if !tracing {
		opts.TracerProvider = tracenoop.NewTracerProvider()
	}
	if opts.Propagator == nil {
		opts.Propagator = propagation.TraceContext{}
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = metricnoop.NewMeterProvider()
	}
	if opts.Destination == "" {
		opts.Destination = "hookwire"
	}
	meter := opts.MeterProvider.Meter("github.com/hookwire/hookwire/bridge")
	replays, _ := meter.Int64Counter("hookwire.replays", metric.WithDescription("History replays (resumes, subscribes with since, fresh connections from the head), by result: replayed, or reset because the history was gone."))
	resets, _ := meter.Int64Counter("hookwire.broker.resets", metric.WithDescription("Times the broker lost its history (a new epoch) and every connection got a reset."))
	return &Hub{
		history: h, logger: opts.Logger, page: opts.ReplayPage, maxHeld: opts.MaxHeld,
		tracer:      opts.TracerProvider.Tracer("github.com/hookwire/hookwire/bridge"),
		tracing:     tracing,
		propagator:  opts.Propagator,
		destination: opts.Destination,
		replays:     replays,
		resets:      resets,
		byUser:      make(map[string]map[*Subscription]struct{}),
		byChan:      make(map[string]map[*Subscription]struct{}),
	}
}

// tailer is the part of Stream that Run reads.
type tailer interface {
	Tail(ctx context.Context, fn func(Batch)) error
}

// Run reads t and fans every event out until ctx is cancelled. It must be
// called once.
func (h *Hub) Run(ctx context.Context, t tailer) error {
	return t.Tail(ctx, h.Publish)
}

// Publish fans a batch out to the matching subscriptions. It never blocks
// on a subscriber. Run calls it; tests may call it directly.
func (h *Hub) Publish(b Batch) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if b.Reset {
		h.resets.Add(context.Background(), 1)
		for _, subs := range h.byUser {
			for s := range subs {
				s.reset()
			}
		}
	}
	for _, ev := range b.Events {
		d := Delivery{Event: ev, Live: true}
		if h.tracing {
			d.fanout = h.startProcess(ev)
		}
		h.route(ev, func(s *Subscription) { s.deliver(d) })
		d.fanout.endRouting()
	}
}

// route calls fn for each subscription ev is delivered to. h.mu is held.
func (h *Hub) route(ev *Event, fn func(*Subscription)) {
	if ev.Channel == "" {
		for _, u := range ev.Users {
			for s := range h.byUser[u] {
				fn(s)
			}
		}
		return
	}
	subs := h.byChan[ev.Channel]
	if len(ev.Users) == 0 {
		for s := range subs {
			fn(s)
		}
		return
	}
	// Both users and channel: walk the smaller index.
	n := 0
	for _, u := range ev.Users {
		n += len(h.byUser[u])
	}
	if n < len(subs) {
		for _, u := range ev.Users {
			for s := range h.byUser[u] {
				if _, ok := s.channels[ev.Channel]; ok {
					fn(s)
				}
			}
		}
		return
	}
	var users map[string]struct{}
	if len(ev.Users) > 8 {
		users = make(map[string]struct{}, len(ev.Users))
		for _, u := range ev.Users {
			users[u] = struct{}{}
		}
	}
	for s := range subs {
		if users != nil {
			if _, ok := users[s.user]; ok {
				fn(s)
			}
		} else if ev.HasUser(s.user) {
			fn(s)
		}
	}
}

// Count returns the number of subscriptions (connections) registered.
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, subs := range h.byUser {
		n += len(subs)
	}
	return n
}

// Subscribe registers sink for the events of user and channels and returns
// its subscription. When since is not zero it first replays, in cursor
// order, every retained event after since that the subscription matches,
// then continues live with no gap and no repeat at the hand-over: live
// events are held from the moment of registration and released after the
// replay, less those the replay already sent. When the history does not
// reach back to since, the sink gets Reset and the subscription continues
// live. registered, when not nil, is called once the subscription receives
// live events and before anything is sent to sink (the welcome frame goes
// there). Subscribe blocks for the replay; the error is ctx's or the
// broker's, and the subscription is then closed.
func (h *Hub) Subscribe(ctx context.Context, sink Sink, user string, channels []string, since Cursor, registered func()) (*Subscription, error) {
	s := &Subscription{hub: h, sink: sink, user: user, channels: make(map[string]struct{}, len(channels))}
	if !since.IsZero() {
		s.holding = true
	}
	h.mu.Lock()
	h.add(h.byUser, user, s)
	for _, ch := range channels {
		if _, dup := s.channels[ch]; !dup {
			s.channels[ch] = struct{}{}
			h.add(h.byChan, ch, s)
		}
	}
	if registered != nil {
		// Under h.mu, so that no live event reaches sink before it.
		registered()
	}
	h.mu.Unlock()
	if since.IsZero() {
		return s, nil
	}
	q := HistoryQuery{Since: since, User: user, Channels: channels}
	if err := s.replay(ctx, q, func(ev *Event) bool { return s.matches(ev) }, true); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (h *Hub) add(idx map[string]map[*Subscription]struct{}, key string, s *Subscription) {
	m := idx[key]
	if m == nil {
		m = make(map[*Subscription]struct{}, 1)
		idx[key] = m
	}
	m[s] = struct{}{}
}

func (h *Hub) remove(idx map[string]map[*Subscription]struct{}, key string, s *Subscription) {
	if m := idx[key]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(idx, key)
		}
	}
}

// maxReplayLinks bounds the links of one replay span to the traces of the
// events it sends.
const maxReplayLinks = 32

// ErrOverflow is returned by a replay whose subscription overflowed.
var ErrOverflow = errors.New("subscriber too slow")

// A Subscription is one sink's registration in the Hub. Its methods are safe
// for concurrent use, but replays (Subscribe and Join with a cursor) must
// not run concurrently for one subscription.
type Subscription struct {
	hub  *Hub
	sink Sink
	user string

	channels map[string]struct{} // guarded by hub.mu

	mu      sync.Mutex // guards holding, held, floor, closed
	holding bool
	held    []Delivery // a zero Delivery stands for a Reset
	// floor is the last cursor the connect-time replay covered: live
	// events at or before it were already sent (or processed by the
	// client before it resumed) and are dropped, so a replica whose
	// reader lags cannot repeat them out of order.
	floor  Cursor
	closed bool
}

// User returns the subscription's user.
func (s *Subscription) User() string { return s.user }

// matches reports whether ev is for this subscription. It takes hub.mu.
func (s *Subscription) matches(ev *Event) bool {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return ev.Matches(s.user, func(ch string) bool { _, ok := s.channels[ch]; return ok })
}

// Channels returns how many channels s is subscribed to.
func (s *Subscription) Channels() int {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return len(s.channels)
}

// ChannelNames returns the channels s is subscribed to.
func (s *Subscription) ChannelNames() []string {
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
// registered, when not nil, is called as in Hub.Subscribe.
func (s *Subscription) Join(ctx context.Context, channel string, since Cursor, registered func()) error {
	h := s.hub
	if !since.IsZero() {
		s.mu.Lock()
		s.holding = true
		s.mu.Unlock()
	}
	h.mu.Lock()
	if _, ok := s.channels[channel]; !ok {
		s.channels[channel] = struct{}{}
		h.add(h.byChan, channel, s)
	}
	if registered != nil {
		registered()
	}
	h.mu.Unlock()
	if since.IsZero() {
		return nil
	}
	q := HistoryQuery{Since: since, User: s.user, Channels: []string{channel}}
	return s.replay(ctx, q, func(ev *Event) bool { return ev.Channel == channel && s.matches(ev) }, false)
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
	case !s.floor.IsZero() && ev.Cursor.Epoch == s.floor.Epoch && !s.floor.Before(ev.Cursor):
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
	s.floor = Cursor{}
	if s.holding {
		// The replay in progress will see ErrHistoryExpired or the
		// new epoch; hold the reset back until then.
		s.held = append(s.held, Delivery{})
		return
	}
	s.sink.Reset(ResetHistoryExpired)
}

// replay sends the history selected by q and want, then releases the held
// live events. With connect set, it also raises the subscription's floor.
func (s *Subscription) replay(ctx context.Context, q HistoryQuery, want func(*Event) bool, connect bool) (err error) {
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
	expired := false
	for {
		evs, err := s.hub.history.History(ctx, q)
		if errors.Is(err, ErrHistoryExpired) {
			expired = true
			result = "reset"
			s.sink.Reset(ResetHistoryExpired)
			break
		}
		if err != nil {
			return fmt.Errorf("replay after %s: %w", q.Since, err)
		}
		for _, ev := range evs {
			if want(ev) {
				if sent < maxReplayLinks && len(ev.Trace) > 0 {
					// Tie the replay to the traces of the events it
					// sends, so each event's trace shows it.
					ectx := s.hub.propagator.Extract(context.Background(), propagation.MapCarrier(ev.Trace))
					span.AddLink(trace.LinkFromContext(ectx))
				}
				if err := s.sink.SendWait(ctx, Delivery{Event: ev}); err != nil {
					return err
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
	floor := since
	if !last.IsZero() && since.Before(last) {
		floor = last
	}
	if expired {
		floor = Cursor{}
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrOverflow
		}
		batch := s.held
		s.held = nil
		if len(batch) == 0 {
			s.holding = false
			if connect {
				s.floor = floor
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
			// Held events up to the floor were replayed (or processed by
			// the client before it resumed). A Join replays one channel
			// only, so other held events are kept.
			if !floor.IsZero() && ev.Cursor.Epoch == floor.Epoch && !floor.Before(ev.Cursor) && (connect || want(ev)) {
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
