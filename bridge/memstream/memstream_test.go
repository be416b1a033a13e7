package memstream

import (
	"sync"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/streamtest"
)

func TestConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T, o streamtest.Options) bridge.Stream {
		return New(Options{HistoryTTL: o.HistoryTTL, DedupeTTL: o.DedupeTTL})
	})
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestCursorsNeverGoBack(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(1_000_000)}
	s := New(Options{Now: clk.Now})
	var got []bridge.Cursor
	for _, ms := range []int64{1_000_000, 1_000_000, 999_000, 1_000_001, 1_000_002} {
		clk.Set(time.UnixMilli(ms))
		got = append(got, streamtest.Append(t, s, &bridge.Event{ID: "e" + time.UnixMilli(ms).String() + string(rune('a'+len(got))), Type: "t", Users: []string{"u"}})[0].Cursor)
	}
	want := [][2]uint64{{1_000_000, 0}, {1_000_000, 1}, {1_000_000, 2}, {1_000_001, 0}, {1_000_002, 0}}
	for i, c := range got {
		if c.Epoch != s.Epoch() || c.MS != want[i][0] || c.Seq != want[i][1] {
			t.Errorf("cursor %d = %s, want %s-%d-%d", i, c, s.Epoch(), want[i][0], want[i][1])
		}
	}
}

func TestTrimReleasesIndexes(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(1_000_000)}
	s := New(Options{Now: clk.Now, HistoryTTL: time.Second, DedupeTTL: 2 * time.Second})
	streamtest.Append(t, s,
		&bridge.Event{ID: "a", Type: "t", Users: []string{"u1", "u2", "u1"}},
		&bridge.Event{ID: "b", Type: "t", Channel: "c"},
		&bridge.Event{ID: "c", Type: "t", Users: []string{"u3"}, Channel: "c"},
	)
	clk.Set(time.UnixMilli(1_001_500))
	streamtest.Append(t, s, &bridge.Event{ID: "d", Type: "t", Users: []string{"u4"}})
	s.mu.Lock()
	if len(s.events) != 1 || len(s.byUser) != 1 || len(s.byChan) != 0 || len(s.seen) != 4 {
		t.Errorf("after trim: %d events, %d users, %d channels, %d ids; want 1, 1, 0, 4",
			len(s.events), len(s.byUser), len(s.byChan), len(s.seen))
	}
	s.mu.Unlock()
	clk.Set(time.UnixMilli(1_002_500))
	res := streamtest.Append(t, s, &bridge.Event{ID: "a", Type: "t", Users: []string{"u1"}}, &bridge.Event{ID: "d", Type: "t", Users: []string{"u1"}})
	if res[0].Duplicate || !res[1].Duplicate {
		t.Errorf("after the dedupe TTL: a duplicate = %v, d duplicate = %v; want false, true", res[0].Duplicate, res[1].Duplicate)
	}
	s.mu.Lock()
	if len(s.seen) != 2 || len(s.expiry) != 2 {
		t.Errorf("after dedupe expiry: %d ids, %d expiries; want 2, 2", len(s.seen), len(s.expiry))
	}
	s.mu.Unlock()
}

func TestHeadEmpty(t *testing.T) {
	s := New(Options{})
	c, err := s.Head(t.Context())
	if err != nil || c != (bridge.Cursor{Epoch: s.Epoch()}) {
		t.Errorf("Head() = %v, %v; want %s-0-0", c, err, s.Epoch())
	}
	if len(s.Epoch()) != 10 {
		t.Errorf("epoch %q, want 10 characters", s.Epoch())
	}
	if _, err := bridge.ParseCursor(c.String()); err != nil {
		t.Errorf("empty head %q does not parse: %v", c, err)
	}
}

// TestStoresItsOwnCopy: History hands out the stream's copy, with Source,
// never the caller's event, which the caller may go on changing.
func TestStoresItsOwnCopy(t *testing.T) {
	s := New(Options{})
	start := streamtest.Append(t, s, &bridge.Event{ID: "start", Type: "t", Users: []string{"u"}})[0].Cursor
	ev := &bridge.Event{ID: "ce", Type: "t", Users: []string{"u"}, Source: "/github", Data: []byte(`{"a":1}`)}
	streamtest.Append(t, s, ev)
	ev.Users[0], ev.Data[2], ev.Source = "x", 'b', "changed"
	got, err := s.History(t.Context(), bridge.HistoryQuery{Since: start, User: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] == ev || got[0].Source != "/github" || string(got[0].Data) != `{"a":1}` || got[0].Users[0] != "u" {
		t.Fatalf("History = %+v, want the stored copy of the appended event", got)
	}
	if got[0].Cursor != ev.Cursor {
		t.Errorf("cursor %s, the caller's %s", got[0].Cursor, ev.Cursor)
	}
}
