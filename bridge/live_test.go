package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/memstream"
)

// liveSink records each delivery's event and whether it reported Live, and
// reads the event's shared frame as a connection does.
type liveSink struct {
	mu   sync.Mutex
	ids  []string
	live []bool
	at   map[string]bool // id -> Live of its delivery
	wake chan struct{}
}

func newLiveSink() *liveSink {
	return &liveSink{at: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (s *liveSink) Send(d bridge.Delivery) {
	_ = d.Event.Wire(func(f []byte) []byte { return append([]byte{0x81}, f...) })
	s.mu.Lock()
	s.ids = append(s.ids, d.Event.ID)
	s.live = append(s.live, d.Live())
	s.at[d.Event.ID] = d.Live()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	d.Done(nil)
}

func (s *liveSink) SendWait(_ context.Context, d bridge.Delivery) error { s.Send(d); return nil }
func (s *liveSink) Reset(reason string)                                 { panic("reset: " + reason) }
func (s *liveSink) Overflow()                                           { panic("overflow") }

// snapshot returns the ids delivered so far.
func (s *liveSink) snapshot() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]bool, len(s.at))
	for id := range s.at {
		m[id] = true
	}
	return m
}

func (s *liveSink) waitFor(t *testing.T, id string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		_, ok := s.at[id]
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("%s not delivered", id)
		}
	}
}

// TestReplayWhileLiveDeliveryRuns: one subscription gets events live while
// others resume from the start, so that the replays read the very events
// (memstream hands out its stored pointers) the fan-out is delivering. A
// replayed delivery never reports Live, a live one always does, every
// resume gets every event in order, and -race sees no write to a shared
// Event.
func TestReplayWhileLiveDeliveryRuns(t *testing.T) {
	st := memstream.New(memstream.Options{})
	h := bridge.NewHub(st, bridge.HubOptions{ReplayPage: 7})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = h.Run(ctx, st) }()
	defer func() { cancel(); wg.Wait() }()

	live := newLiveSink()
	if _, err := h.Subscribe(ctx, bridge.SubscribeRequest{Sink: live, User: "u"}); err != nil {
		t.Fatal(err)
	}
	// Tail reads what is appended after it starts: warm it up first.
	warm := newLiveSink()
	if _, err := h.Subscribe(ctx, bridge.SubscribeRequest{Sink: warm, User: "w"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; len(warm.snapshot()) == 0; i++ {
		if i == 500 {
			t.Fatal("the hub does not tail the stream")
		}
		if _, err := st.Append(ctx, []*bridge.Event{{ID: fmt.Sprint("warm", i), Type: "t", Users: []string{"w"}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := st.Append(ctx, []*bridge.Event{{ID: "start", Type: "t", Users: []string{"u"}}})
	if err != nil {
		t.Fatal(err)
	}
	start := res[0].Cursor
	live.waitFor(t, "start")

	const events = 400
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range events {
			ev := &bridge.Event{ID: fmt.Sprint("e", i), Type: "t", Users: []string{"u"}, Data: []byte(`{"n":1}`)}
			if _, err := st.Append(ctx, []*bridge.Event{ev}); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	for r := 0; r < 30; r++ {
		before := live.snapshot() // fanned out before this resume registers
		rs := newLiveSink()
		sub, err := h.Subscribe(ctx, bridge.SubscribeRequest{Sink: rs, User: "u", Since: start})
		if err != nil {
			t.Fatal(err)
		}
		rs.mu.Lock()
		ids, lv := rs.ids, rs.live
		for i, id := range ids {
			if before[id] && lv[i] {
				t.Errorf("resume %d: %s, replayed from history, reports Live", r, id)
			}
			if i > 0 && lv[i-1] && !lv[i] {
				t.Errorf("resume %d: %s replayed after a live delivery", r, id)
			}
		}
		rs.mu.Unlock()
		sub.Close()
		for id := range before {
			if id != "start" && !rs.snapshot()[id] {
				t.Errorf("resume %d: %s missing", r, id)
			}
		}
	}
	live.waitFor(t, fmt.Sprint("e", events-1))
	live.mu.Lock()
	defer live.mu.Unlock()
	for i, l := range live.live {
		if !l {
			t.Errorf("live delivery of %s does not report Live", live.ids[i])
		}
	}
	if len(live.ids) != events+1 {
		t.Errorf("live subscription got %d events, want %d", len(live.ids), events+1)
	}
}
