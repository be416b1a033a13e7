package bridge_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hookwire/hookwire/bridge"
)

// sink records what a subscription receives.
type sink struct {
	mu       sync.Mutex
	got      []string // event ids, "reset:<reason>" and "overflow"
	took     []bridge.Delivery
	onSend   func()
	overflow bool
}

func (s *sink) Send(d bridge.Delivery) {
	s.mu.Lock()
	s.got = append(s.got, d.Event.ID)
	s.took = append(s.took, d)
	s.mu.Unlock()
}

func (s *sink) SendWait(_ context.Context, d bridge.Delivery) error {
	s.Send(d)
	if s.onSend != nil {
		s.onSend()
	}
	return nil
}

func (s *sink) Reset(reason string) {
	s.mu.Lock()
	s.got = append(s.got, "reset:"+reason)
	s.mu.Unlock()
}

func (s *sink) Overflow() {
	s.mu.Lock()
	s.got = append(s.got, "overflow")
	s.mu.Unlock()
}

func (s *sink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// history is an in-test historian over a fixed log.
type history struct {
	log     []*bridge.Event
	expired bool
	calls   int
	onCall  func(call int)
}

func (h *history) History(_ context.Context, q bridge.HistoryQuery) ([]*bridge.Event, error) {
	h.calls++
	if h.onCall != nil {
		h.onCall(h.calls)
	}
	if h.expired {
		return nil, bridge.ErrHistoryExpired
	}
	var out []*bridge.Event
	for _, ev := range h.log {
		if !q.Since.Before(ev.Cursor) {
			continue
		}
		if ev.HasUser(q.User) || (len(ev.Users) == 0 && slices.Contains(q.Channels, ev.Channel)) {
			out = append(out, ev)
			if len(out) == q.Limit {
				break
			}
		}
	}
	return out, nil
}

func ev(n uint64, users []string, channel string) *bridge.Event {
	return &bridge.Event{ID: fmt.Sprintf("e%d", n), Type: "t", Users: users, Channel: channel, Cursor: bridge.Cursor{Epoch: "ep", MS: n}}
}

func TestHubRouting(t *testing.T) {
	h := bridge.NewHub(&history{}, bridge.HubOptions{})
	ctx := t.Context()
	u42a, u42b, u43, p42, p43 := &sink{}, &sink{}, &sink{}, &sink{}, &sink{}
	mustSub := func(s *sink, user string, chans ...string) {
		if _, err := h.Subscribe(ctx, bridge.SubscribeRequest{Sink: s, User: user, Channels: chans}); err != nil {
			t.Fatal(err)
		}
	}
	mustSub(u42a, "42")
	mustSub(u42b, "42")
	mustSub(u43, "43")
	mustSub(p42, "42", "prices")
	mustSub(p43, "43", "prices")
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{
		ev(1, []string{"42"}, ""),       // every connection of 42
		ev(2, nil, "prices"),            // every subscriber of prices
		ev(3, []string{"43"}, "prices"), // 43's subscribed connections only
		ev(4, []string{"44"}, ""),       // nobody here
		ev(5, []string{"42"}, "other"),  // 42 but not subscribed to other
		ev(6, []string{"42", "43"}, ""), // both users
	}})
	tests := []struct {
		name string
		s    *sink
		want []string
	}{
		{"42 tab a", u42a, []string{"e1", "e6"}},
		{"42 tab b", u42b, []string{"e1", "e6"}},
		{"43", u43, []string{"e6"}},
		{"42 on prices", p42, []string{"e1", "e2", "e6"}},
		{"43 on prices", p43, []string{"e2", "e3", "e6"}},
	}
	for _, tt := range tests {
		if got := tt.s.ids(); !slices.Equal(got, tt.want) {
			t.Errorf("%s got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestHubRoutingManyUsersOnChannel(t *testing.T) {
	h := bridge.NewHub(&history{}, bridge.HubOptions{})
	sinks := map[string]*sink{}
	for i := range 20 {
		u := fmt.Sprint(i)
		sinks[u] = &sink{}
		if _, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: sinks[u], User: u, Channels: []string{"c"}}); err != nil {
			t.Fatal(err)
		}
	}
	users := []string{"1", "3", "5", "7", "9", "11", "13", "15", "17", "99"}
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(1, users, "c")}})
	for u, s := range sinks {
		want := slices.Contains(users, u)
		if got := len(s.ids()) == 1; got != want {
			t.Errorf("user %s delivered=%v, want %v", u, got, want)
		}
	}
}

func TestSubscriptionJoinLeaveClose(t *testing.T) {
	h := bridge.NewHub(&history{}, bridge.HubOptions{})
	s := &sink{}
	sub, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42"})
	if err != nil {
		t.Fatal(err)
	}
	registered := false
	if err := sub.Join(t.Context(), "c", bridge.Cursor{}, func() { registered = true }); err != nil || !registered {
		t.Fatalf("Join: %v, registered %v", err, registered)
	}
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(1, nil, "c")}})
	sub.Leave("c")
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(2, nil, "c")}})
	sub.Close()
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(3, []string{"42"}, "")}})
	if got := s.ids(); !slices.Equal(got, []string{"e1"}) {
		t.Errorf("got %v, want [e1]", got)
	}
	if n := bridge.Count(h); n != 0 {
		t.Errorf("Count after Close = %d", n)
	}
}

// TestResumeHandOver: live events published during the replay are held and
// released after it, without the ones the replay sent, in cursor order.
func TestResumeHandOver(t *testing.T) {
	log := []*bridge.Event{ev(1, []string{"42"}, ""), ev(2, []string{"42"}, ""), ev(3, []string{"42"}, ""), ev(4, []string{"43"}, "")}
	hist := &history{log: log}
	h := bridge.NewHub(hist, bridge.HubOptions{ReplayPage: 2})
	s := &sink{}
	e5 := ev(5, []string{"42"}, "")
	hist.onCall = func(call int) {
		if call == 1 {
			// While replaying, the reader fans out e3 (already in the
			// history) and e5 (new).
			h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{log[2], log[3], e5}})
			hist.log = append(hist.log, e5)
		}
	}
	welcomed := false
	_, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42", Since: bridge.Cursor{Epoch: "ep", MS: 1}, Registered: func() { welcomed = true }})
	if err != nil {
		t.Fatal(err)
	}
	if !welcomed {
		t.Error("registered callback not called")
	}
	if got, want := s.ids(), []string{"e2", "e3", "e5"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A lagging reader repeating e3 after the hand-over is dropped.
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{log[2], ev(6, []string{"42"}, "")}})
	if got, want := s.ids(), []string{"e2", "e3", "e5", "e6"}; !slices.Equal(got, want) {
		t.Errorf("after lagging repeat got %v, want %v", got, want)
	}
}

func TestResumeExpired(t *testing.T) {
	h := bridge.NewHub(&history{expired: true}, bridge.HubOptions{})
	s := &sink{}
	if _, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42", Since: bridge.Cursor{Epoch: "old", MS: 1}}); err != nil {
		t.Fatal(err)
	}
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(7, []string{"42"}, "")}})
	if got, want := s.ids(), []string{"reset:history_expired", "e7"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestBrokerResetReachesEverySubscriber(t *testing.T) {
	h := bridge.NewHub(&history{}, bridge.HubOptions{})
	a, b := &sink{}, &sink{}
	h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: a, User: "1"})
	h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: b, User: "2", Channels: []string{"c"}})
	h.Publish(t.Context(), bridge.Batch{Reset: true, Events: []*bridge.Event{ev(1, nil, "c")}})
	if got := a.ids(); !slices.Equal(got, []string{"reset:history_expired"}) {
		t.Errorf("a got %v", got)
	}
	if got := b.ids(); !slices.Equal(got, []string{"reset:history_expired", "e1"}) {
		t.Errorf("b got %v", got)
	}
}

func TestHeldOverflow(t *testing.T) {
	hist := &history{log: []*bridge.Event{ev(2, []string{"42"}, "")}}
	h := bridge.NewHub(hist, bridge.HubOptions{MaxHeld: 2})
	s := &sink{}
	hist.onCall = func(int) {
		h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(3, []string{"42"}, ""), ev(4, []string{"42"}, ""), ev(5, []string{"42"}, "")}})
	}
	_, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42", Since: bridge.Cursor{Epoch: "ep", MS: 1}})
	if err == nil {
		t.Fatal("Subscribe succeeded after overflow")
	}
	if got := s.ids(); !slices.Contains(got, "overflow") {
		t.Errorf("got %v, want an overflow", got)
	}
	if bridge.Count(h) != 0 {
		t.Error("overflowed subscription still registered")
	}
}

func TestJoinReplaysChannelOnly(t *testing.T) {
	hist := &history{log: []*bridge.Event{ev(1, nil, "c"), ev(2, []string{"42"}, ""), ev(3, nil, "c")}}
	h := bridge.NewHub(hist, bridge.HubOptions{})
	s := &sink{}
	sub, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42"})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	if err := sub.Join(t.Context(), "c", bridge.Cursor{Epoch: "ep", MS: 0}, func() { order = append(order, "subscribed") }); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ids(), []string{"e1", "e3"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if len(order) != 1 {
		t.Errorf("registered called %d times", len(order))
	}
}

func TestFrameCarriesSource(t *testing.T) {
	e := ev(1, []string{"42"}, "")
	if strings.Contains(string(e.Frame()), `"source"`) {
		t.Errorf("frame %s has a source", e.Frame())
	}
	e = ev(1, []string{"42"}, "")
	e.Source = "/github/acme"
	if !strings.Contains(string(e.Frame()), `"source":"/github/acme"`) {
		t.Errorf("frame %s lacks the source", e.Frame())
	}
}

// TestRegisteredRunsWithoutTheHubLock: Registered may do anything the
// fan-out does (under the old API it ran under the Hub's lock, and this
// deadlocked); events fanned out meanwhile are held, and reach the sink
// after what Registered sent, for Subscribe and for Join.
func TestRegisteredRunsWithoutTheHubLock(t *testing.T) {
	h := bridge.NewHub(&history{}, bridge.HubOptions{})
	s := &sink{}
	welcome := func(name string, e *bridge.Event) func() {
		return func() {
			s.mu.Lock()
			s.got = append(s.got, name)
			s.mu.Unlock()
			h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{e}})
		}
	}
	sub, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42", Registered: welcome("welcome", ev(1, []string{"42"}, ""))})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Join(t.Context(), "c", bridge.Cursor{}, welcome("subscribed", ev(2, nil, "c"))); err != nil {
		t.Fatal(err)
	}
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{ev(3, nil, "c")}})
	if got, want := s.ids(), []string{"welcome", "e1", "subscribed", "e2", "e3"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
