package bridge

import (
	"context"
	"log/slog"
	"sync"

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

	// mu guards byUser, byChan and every Subscription.channels. It is
	// the outermost lock: Hub.mu, then Subscription.mu, then the sink's
	// (in hookwire: the connection's writer.mu, then wire.mu). No
	// caller's callback runs under it.
	mu     sync.RWMutex
	byUser map[string]subSet
	byChan map[string]subSet

	// tailing is closed when Run's stream is positioned (its first
	// batch): from then on every appended event reaches the hub.
	tailing     chan struct{}
	tailingOnce sync.Once
}

// subSet is the subscriptions of one index key. A key with a single one
// (a user with one connection, the common case) holds it in one, with no
// map of its own: about 130 bytes less for every idle connection. A
// second one moves them all to more. For a key in the index exactly one
// of the two is set.
type subSet struct {
	one  *Subscription
	more map[*Subscription]struct{}
}

func (set subSet) len() int {
	if set.one != nil {
		return 1
	}
	return len(set.more)
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
		byUser:      make(map[string]subSet),
		byChan:      make(map[string]subSet),
		tailing:     make(chan struct{}),
	}
}

// tailer is the part of Stream that Run reads.
type tailer interface {
	Tail(ctx context.Context, fn func(Batch)) error
}

// Run reads t and fans every event out until ctx is cancelled. It must be
// called once.
func (h *Hub) Run(ctx context.Context, t tailer) error {
	return t.Tail(ctx, func(b Batch) {
		// Tail's first batch says it is positioned (bridge.Stream).
		h.tailingOnce.Do(func() { close(h.tailing) })
		h.Publish(ctx, b)
	})
}

// Tailing is closed once Run's stream is positioned: every event appended
// from then on is fanned out. Until then a subscriber welcomed from the
// head could miss the events appended between its welcome and the
// stream's first read, so the edge lets no subscriber in before it.
func (h *Hub) Tailing() <-chan struct{} { return h.tailing }

// Publish fans a batch out to the matching subscriptions. It never blocks
// on a subscriber. Run calls it; tests may call it directly. ctx is the
// reader's: it carries no deadline for the fan-out.
func (h *Hub) Publish(ctx context.Context, b Batch) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if b.Reset {
		h.resets.Add(ctx, 1)
		for _, set := range h.byUser {
			if set.one != nil {
				set.one.reset()
			}
			for s := range set.more {
				s.reset()
			}
		}
	}
	for _, ev := range b.Events {
		d := Delivery{Event: ev, fanout: untraced}
		if h.tracing {
			if f := h.startProcess(ctx, ev); f != nil {
				d.fanout = f
			}
		}
		h.route(ev, func(s *Subscription) { s.deliver(d) })
		d.traced().endRouting()
	}
}

// route calls fn for each subscription ev is delivered to. h.mu is held.
func (h *Hub) route(ev *Event, fn func(*Subscription)) {
	if ev.Channel == "" {
		for _, u := range ev.Users {
			set := h.byUser[u]
			if set.one != nil {
				fn(set.one)
			}
			for s := range set.more {
				fn(s)
			}
		}
		return
	}
	subs := h.byChan[ev.Channel]
	if len(ev.Users) == 0 {
		if subs.one != nil {
			fn(subs.one)
		}
		for s := range subs.more {
			fn(s)
		}
		return
	}
	// Both users and channel: walk the smaller index.
	n := 0
	for _, u := range ev.Users {
		n += h.byUser[u].len()
	}
	if n < subs.len() {
		for _, u := range ev.Users {
			set := h.byUser[u]
			if set.one != nil {
				if _, ok := set.one.channels[ev.Channel]; ok {
					fn(set.one)
				}
			}
			for s := range set.more {
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
	if subs.one != nil {
		forUser(subs.one, ev, users, fn)
	}
	for s := range subs.more {
		forUser(s, ev, users, fn)
	}
}

// forUser calls fn(s) when ev is for s's user: in users when that is not
// nil, else in ev.Users.
func forUser(s *Subscription, ev *Event, users map[string]struct{}, fn func(*Subscription)) {
	if users != nil {
		if _, ok := users[s.user]; ok {
			fn(s)
		}
	} else if ev.HasUser(s.user) {
		fn(s)
	}
}

// count returns the number of subscriptions (connections) registered.
func (h *Hub) count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, set := range h.byUser {
		n += set.len()
	}
	return n
}

// SubscribeRequest is what Hub.Subscribe registers.
type SubscribeRequest struct {
	Sink     Sink
	User     string
	Channels []string
	// Since, when not zero, is the cursor to resume after: the retained
	// events after it that the subscription matches are replayed, in
	// cursor order, before the live ones.
	Since Cursor
	// Registered, when not nil, is called once the subscription receives
	// live events and before any event is sent to Sink (the welcome frame
	// goes there). It runs without the Hub's lock, on Subscribe's
	// goroutine, while the live events are held back.
	Registered func()
}

// Subscribe registers req.Sink for the events of req.User and
// req.Channels and returns its subscription. From the moment of
// registration, live events are held back; Registered is called; then the
// replay after req.Since (when set) is sent, and the held events are
// released, less those the replay already sent: the sink sees every event
// after its first frame, with no gap and no repeat at the hand-over. When
// the history does not reach back to Since, the sink gets Reset and the
// subscription continues live. Subscribe blocks for the replay; the error
// is ctx's or the broker's, and the subscription is then closed.
func (h *Hub) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, error) {
	s := &Subscription{hub: h, sink: req.Sink, user: req.User}
	if len(req.Channels) > 0 {
		// Left nil without channels (Join makes it): a map costs an idle
		// connection even empty.
		s.channels = make(map[string]struct{}, len(req.Channels))
	}
	s.holding = true
	h.mu.Lock()
	h.add(h.byUser, req.User, s)
	for _, ch := range req.Channels {
		if _, dup := s.channels[ch]; !dup {
			s.channels[ch] = struct{}{}
			h.add(h.byChan, ch, s)
		}
	}
	h.mu.Unlock()
	if req.Registered != nil {
		req.Registered()
	}
	var err error
	if req.Since.IsZero() {
		err = s.releaseHeld(ctx, Cursor{}, nil, onSubscribe)
	} else {
		q := HistoryQuery{Since: req.Since, User: req.User, Channels: req.Channels}
		err = s.replay(ctx, q, func(ev *Event) bool { return s.matches(ev) }, onSubscribe)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (h *Hub) add(idx map[string]subSet, key string, s *Subscription) {
	set := idx[key]
	switch {
	case set.one == nil && set.more == nil:
		set.one = s
	case set.more == nil:
		if set.one == s {
			return
		}
		set.more = map[*Subscription]struct{}{set.one: {}, s: {}}
		set.one = nil
	default:
		set.more[s] = struct{}{}
	}
	idx[key] = set
}

func (h *Hub) remove(idx map[string]subSet, key string, s *Subscription) {
	set, ok := idx[key]
	switch {
	case !ok:
	case set.one != nil:
		if set.one == s {
			delete(idx, key)
		}
	default:
		delete(set.more, s)
		if len(set.more) == 0 {
			delete(idx, key)
		}
	}
}
