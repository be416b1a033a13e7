// Package streamtest is the conformance suite of bridge.Stream: every
// adapter (bridge/memstream, bridge/redisstream) runs it from its tests so
// that all of them implement the same semantics.
//
// It imports only bridge and the standard library.
package streamtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

// Options are the settings a test needs the stream opened with. Zero values
// mean the adapter's defaults.
type Options struct {
	HistoryTTL time.Duration
	DedupeTTL  time.Duration
}

// OpenFunc returns a new, empty stream for one test. It must not be shared
// with another test, and it is released in t.Cleanup.
type OpenFunc func(t *testing.T, o Options) bridge.Stream

// Run runs the conformance suite against the streams open returns.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open OpenFunc)
	}{
		{"AppendTail", testAppendTail},
		{"BatchAppend", testBatchAppend},
		{"Dedupe", testDedupe},
		{"DedupeExpires", testDedupeExpires},
		{"RoundTrip", testRoundTrip},
		{"HistoryTargets", testHistoryTargets},
		{"HistoryPaging", testHistoryPaging},
		{"HistoryAtHead", testHistoryAtHead},
		{"HistoryOtherEpoch", testHistoryOtherEpoch},
		{"HistoryFuture", testHistoryFuture},
		{"HistoryRetention", testHistoryRetention},
		{"HistoryIdleHead", testHistoryIdleHead},
		{"TailCancel", testTailCancel},
		{"TailStartsAtEnd", testTailStartsAtEnd},
		{"ConcurrentAppend", testConcurrentAppend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// ev returns an event with the given id, type "test", users and channel.
func ev(id string, users []string, channel string) *bridge.Event {
	return &bridge.Event{ID: id, Type: "test", Users: users, Channel: channel, Data: json.RawMessage(`{"id":"` + id + `"}`)}
}

// Append appends evs and fails the test on error.
func Append(t testing.TB, s bridge.Stream, evs ...*bridge.Event) []bridge.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), evs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(evs) {
		t.Fatalf("Append returned %d results for %d events", len(res), len(evs))
	}
	return res
}

// A Recorder collects what a Tail delivers.
type Recorder struct {
	mu      sync.Mutex
	batches []bridge.Batch
	changed chan struct{}
	done    chan error
}

// StartTail runs s.Tail in a goroutine until the test ends, and returns
// once the tail is positioned: its first, empty batch was made.
func StartTail(t testing.TB, s bridge.Stream) *Recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &Recorder{changed: make(chan struct{}), done: make(chan error, 1)}
	go func() { r.done <- s.Tail(ctx, r.record) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Tail returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Tail did not return within 5s of cancel")
		}
	})
	// Tail's first batch is empty and says it is positioned: every event
	// appended from then on is delivered (bridge.Stream). Waiting for it,
	// not for a probe event, is what makes every partition's reader
	// count: a probe reaches one partition only.
	if !r.waitFor(15*time.Second, func() bool { return len(r.Batches()) > 0 }) {
		t.Fatalf("Tail made no first (positioned) batch within 15s")
	}
	if first := r.Batches()[0]; first.Reset || len(first.Events) > 0 {
		t.Fatalf("Tail's first batch has %d events (reset %v), want the empty positioned batch", len(first.Events), first.Reset)
	}
	return r
}

func (r *Recorder) record(b bridge.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
	close(r.changed)
	r.changed = make(chan struct{})
}

// WaitFor waits up to d for cond to hold, re-checking after each batch,
// and reports whether it held.
func (r *Recorder) WaitFor(d time.Duration, cond func() bool) bool { return r.waitFor(d, cond) }

// waitFor waits up to d for cond to hold, re-checking after each batch.
func (r *Recorder) waitFor(d time.Duration, cond func() bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return cond()
		}
	}
}

// Batches returns a copy of the batches delivered so far.
func (r *Recorder) Batches() []bridge.Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Batch(nil), r.batches...)
}

// Events returns every event delivered so far, in delivery order.
func (r *Recorder) Events() []*bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*bridge.Event
	for _, b := range r.batches {
		out = append(out, b.Events...)
	}
	return out
}

// Resets returns how many batches had Reset set.
func (r *Recorder) Resets() int {
	n := 0
	for _, b := range r.Batches() {
		if b.Reset {
			n++
		}
	}
	return n
}

// WaitIDs waits up to d until every id was delivered, and fails the test
// otherwise. It returns the delivered events with those ids, in delivery
// order.
func (r *Recorder) WaitIDs(t testing.TB, d time.Duration, ids ...string) []*bridge.Event {
	t.Helper()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var got []*bridge.Event
	ok := r.waitFor(d, func() bool {
		got = got[:0]
		seen := make(map[string]bool, len(want))
		for _, e := range r.Events() {
			// An event to users of several partitions comes once per
			// partition: count it once.
			if want[e.ID] && !seen[e.ID] {
				seen[e.ID] = true
				got = append(got, e)
			}
		}
		return len(got) >= len(want)
	})
	if !ok {
		t.Fatalf("Tail delivered %d of %d events within %v: %v", len(got), len(want), d, idsOf(got))
	}
	return got
}

// CheckOrder fails the test unless the events delivered so far after the
// last Reset have strictly increasing cursors, all of one epoch.
func (r *Recorder) CheckOrder(t testing.TB) {
	t.Helper()
	var prev bridge.Cursor
	for _, b := range r.Batches() {
		if b.Reset {
			prev = bridge.Cursor{}
		}
		for _, e := range b.Events {
			if !prev.IsZero() && (e.Cursor.Epoch != prev.Epoch || !prev.Before(e.Cursor)) {
				t.Errorf("Tail delivered %s (%s) after %s", e.Cursor, e.ID, prev)
			}
			prev = e.Cursor
		}
	}
}

func idsOf(evs []*bridge.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func history(t *testing.T, s bridge.Stream, q bridge.HistoryQuery) []*bridge.Event {
	t.Helper()
	evs, err := s.History(t.Context(), q)
	if err != nil {
		t.Fatalf("History(%+v): %v", q, err)
	}
	return evs
}

// checkIDs checks that got are the events want, in order. With vector
// cursors (a stream of several partitions) the order is only that of each
// partition: got must hold each wanted id once, and the events of one
// partition must come in the order of want.
func checkIDs(t *testing.T, what string, got []*bridge.Event, want ...string) {
	t.Helper()
	g := idsOf(got)
	if len(got) > 0 && got[0].Cursor.Partitions() > 0 {
		rank := make(map[string]int, len(want))
		for i, id := range want {
			rank[id] = i
		}
		last := map[int]int{}
		ok := len(got) == len(want)
		seen := map[string]bool{}
		for _, e := range got {
			r, wanted := rank[e.ID]
			p := e.Cursor.Part()
			if prev, has := last[p]; !wanted || seen[e.ID] || (has && prev > r) {
				ok = false
			}
			seen[e.ID] = true
			last[p] = r
		}
		if !ok {
			t.Errorf("%s = %q, want %q (in order within each partition)", what, g, want)
		}
		return
	}
	if !reflect.DeepEqual(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Errorf("%s = %q, want %q", what, g, want)
	}
}

// SameEvent reports whether two cursors are of the same event: equal, or
// for vector cursors, of the same entry of the same partition (the vector
// of the other partitions depends on who read the event).
func SameEvent(a, b bridge.Cursor) bool {
	if a.Partitions() == 0 && b.Partitions() == 0 {
		return a == b
	}
	return a.Part() == b.Part() && a.Part() >= 0 && a.Pos(a.Part()) == b.Pos(b.Part())
}

// Partitioned reports whether s spreads events over partitions (its Head
// is a vector cursor). Events to users of different partitions are then
// separate copies, with separate dedupe records.
func Partitioned(t testing.TB, s bridge.Stream) bool {
	t.Helper()
	h, ok := s.(interface {
		Head(context.Context) (bridge.Cursor, error)
	})
	if !ok {
		return false
	}
	c, err := h.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return c.Partitions() > 0
}

// copiesOf returns every delivered event with id (more than one for an
// event to users of several partitions).
func copiesOf(r *Recorder, id string) []*bridge.Event {
	var out []*bridge.Event
	for _, e := range r.Events() {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

func testAppendTail(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	r := StartTail(t, s)
	var ids []string
	for i := range 20 {
		id := "at" + strconv.Itoa(i)
		ids = append(ids, id)
		Append(t, s, ev(id, []string{"u1"}, ""))
	}
	got := r.WaitIDs(t, 5*time.Second, ids...)
	checkIDs(t, "Tail", got, ids...)
	r.CheckOrder(t)
	if n := r.Resets(); n != 0 {
		t.Errorf("Tail delivered %d resets, want 0", n)
	}
}

func testBatchAppend(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	r := StartTail(t, s)
	before := time.Now().Add(-time.Second)
	evs := []*bridge.Event{ev("b1", []string{"u1"}, ""), ev("b2", nil, "ch"), ev("b3", []string{"u1", "u2"}, "ch")}
	res := Append(t, s, evs...)
	after := time.Now().Add(time.Second)
	for i, e := range evs {
		if res[i].Duplicate {
			t.Errorf("result %d is a duplicate", i)
		}
		if !SameEvent(res[i].Cursor, e.Cursor) || e.Cursor.IsZero() {
			t.Errorf("result %d cursor %s, event cursor %s", i, res[i].Cursor, e.Cursor)
		}
		if i > 0 && !evs[i-1].Cursor.Before(e.Cursor) {
			t.Errorf("cursor %d %s not after %s", i, e.Cursor, evs[i-1].Cursor)
		}
		if e.Time.Before(before) || e.Time.After(after) {
			t.Errorf("event %d time %v, want about now", i, e.Time)
		}
		if uint64(e.Time.UnixMilli()) != e.Cursor.MS {
			t.Errorf("event %d time %v does not match cursor %s", i, e.Time, e.Cursor)
		}
		if _, err := bridge.ParseCursor(e.Cursor.String()); err != nil {
			t.Errorf("cursor %d does not parse: %v", i, err)
		}
	}
	got := r.WaitIDs(t, 5*time.Second, "b1", "b2", "b3")
	checkIDs(t, "Tail", got, "b1", "b2", "b3")
	for _, e := range evs {
		if !slices.ContainsFunc(copiesOf(r, e.ID), func(g *bridge.Event) bool { return SameEvent(g.Cursor, e.Cursor) }) {
			t.Errorf("Tail cursors of %s differ from Append cursor %s", e.ID, e.Cursor)
		}
	}
}

func testDedupe(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	// With partitions, an id is remembered in the partition of its
	// event's addressing: repeat it with addressing of the same partition.
	again2, again1 := ev("d2", []string{"u2"}, ""), ev("d1", nil, "ch")
	if Partitioned(t, s) {
		again2, again1 = ev("d2", []string{"u1"}, "ch"), ev("d1", []string{"u1"}, "ch")
	}
	r := StartTail(t, s)
	first := Append(t, s, ev("d1", []string{"u1"}, ""))[0]
	again := Append(t, s, ev("d1", []string{"u1"}, ""))[0]
	if !again.Duplicate || !SameEvent(again.Cursor, first.Cursor) {
		t.Errorf("second append of d1 = %+v, want duplicate of %s", again, first.Cursor)
	}
	res := Append(t, s, ev("d2", []string{"u1"}, ""), again2, again1, ev("d3", []string{"u1"}, ""))
	want := []bool{false, true, true, false}
	for i, w := range want {
		if res[i].Duplicate != w {
			t.Errorf("batch result %d duplicate = %v, want %v", i, res[i].Duplicate, w)
		}
	}
	if !SameEvent(res[1].Cursor, res[0].Cursor) {
		t.Errorf("in-batch duplicate cursor %s, want %s", res[1].Cursor, res[0].Cursor)
	}
	if !SameEvent(res[2].Cursor, first.Cursor) {
		t.Errorf("d1 duplicate cursor %s, want %s", res[2].Cursor, first.Cursor)
	}
	Append(t, s, ev("d.end", []string{"u1"}, ""))
	r.WaitIDs(t, 5*time.Second, "d.end")
	n := map[string]int{}
	for _, e := range r.Events() {
		n[e.ID]++
	}
	for _, id := range []string{"d1", "d2", "d3", "d.end"} {
		if n[id] != 1 {
			t.Errorf("Tail delivered %s %d times, want 1", id, n[id])
		}
	}
	since := Append(t, s, ev("d.since", []string{"x"}, ""))[0].Cursor
	Append(t, s, ev("d1", []string{"u1"}, ""))
	checkIDs(t, "History after duplicate", history(t, s, bridge.HistoryQuery{Since: since, User: "u1", Limit: 10}))
}

func testDedupeExpires(t *testing.T, open OpenFunc) {
	s := open(t, Options{DedupeTTL: 200 * time.Millisecond})
	first := Append(t, s, ev("x1", []string{"u1"}, ""))[0]
	time.Sleep(400 * time.Millisecond)
	again := Append(t, s, ev("x1", []string{"u1"}, ""))[0]
	if again.Duplicate || !first.Cursor.Before(again.Cursor) {
		t.Errorf("append after the dedupe TTL = %+v, want a new event after %s", again, first.Cursor)
	}
}

func testRoundTrip(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	r := StartTail(t, s)
	since := Append(t, s, ev("rt.start", []string{"x"}, ""))[0].Cursor
	in := []*bridge.Event{
		{ID: "rt1", Type: "balance.updated", Users: []string{"42", "ü ser/with:odd{chars}"}, Channel: "prices.EURUSD",
			Data:  json.RawMessage(`{"balance":"10.00","nested":[1,2,{"a":null}]}`),
			Trace: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "congo=t61rcWkgMzE"}},
		{ID: "rt2", Type: "t", Channel: "prices.EURUSD", Source: "https://example.com/prices", Data: json.RawMessage(`"just a string"`),
			Occurred: time.Date(2026, 4, 5, 17, 31, 0, 123456789, time.UTC)},
		{ID: "rt3", Type: "t", Users: []string{"42"}},
	}
	Append(t, s, in...)
	tailed := r.WaitIDs(t, 5*time.Second, "rt1", "rt2", "rt3")
	hist := history(t, s, bridge.HistoryQuery{Since: since, User: "42", Channels: []string{"prices.EURUSD"}, Limit: 10})
	checkIDs(t, "History", hist, "rt1", "rt2", "rt3")
	partitioned := len(tailed) > 0 && tailed[0].Cursor.Partitions() > 0
	for _, got := range [][]*bridge.Event{tailed, hist} {
		for _, g := range got {
			i := slices.IndexFunc(in, func(w *bridge.Event) bool { return w.ID == g.ID })
			if i < 0 {
				t.Errorf("read back unknown %s", g.ID)
				continue
			}
			w := in[i]
			users := reflect.DeepEqual(g.Users, w.Users)
			same := SameEvent(g.Cursor, w.Cursor)
			if partitioned {
				// A copy holds its partition's users, and has its
				// own entry ID.
				users = len(g.Users) > 0 == (len(w.Users) > 0)
				for _, u := range g.Users {
					users = users && slices.Contains(w.Users, u)
				}
				same = true
			}
			if g.ID != w.ID || g.Type != w.Type || !users || g.Channel != w.Channel || g.Source != w.Source ||
				!g.Occurred.Equal(w.Occurred) || string(g.Data) != string(w.Data) || !same || !g.Time.Equal(w.Time) && !partitioned ||
				!(reflect.DeepEqual(g.Trace, w.Trace) || len(g.Trace) == 0 && len(w.Trace) == 0) {
				t.Errorf("read back %+v\nwant %+v", g, w)
			}
		}
	}
}

func testHistoryTargets(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	since := Append(t, s, ev("h.start", []string{"x"}, ""))[0].Cursor
	Append(t, s,
		ev("h.u1", []string{"u1"}, ""),
		ev("h.u2", []string{"u2"}, ""),
		ev("h.c1", nil, "c1"),
		ev("h.u1c1", []string{"u1", "u3"}, "c1"),
		ev("h.c2", nil, "c2"),
		ev("h.u1u2", []string{"u2", "u1", "u1"}, ""),
	)
	tests := []struct {
		name     string
		user     string
		channels []string
		want     []string
	}{
		{"user and channel", "u1", []string{"c1"}, []string{"h.u1", "h.c1", "h.u1c1", "h.u1u2"}},
		{"user only", "u2", nil, []string{"h.u2", "h.u1u2"}},
		{"user with users and channel", "u3", nil, []string{"h.u1c1"}},
		{"channel only: users+channel events are indexed under users", "nobody", []string{"c1"}, []string{"h.c1"}},
		{"two channels", "", []string{"c2", "c1", "c2"}, []string{"h.c1", "h.c2"}},
		{"nothing", "nobody", []string{"none"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := history(t, s, bridge.HistoryQuery{Since: since, User: tt.user, Channels: tt.channels, Limit: 100})
			checkIDs(t, "History", got, tt.want...)
		})
	}
}

func testHistoryPaging(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	since := Append(t, s, ev("p.start", []string{"x"}, ""))[0].Cursor
	var want []string
	for i := range 10 {
		id := "p" + strconv.Itoa(i)
		want = append(want, id)
		user, ch := []string{"p"}, ""
		if i%3 == 1 {
			user, ch = nil, "pc"
		}
		Append(t, s, ev(id, user, ch), ev("other"+strconv.Itoa(i), []string{"q"}, "pc"))
	}
	var got []*bridge.Event
	q := bridge.HistoryQuery{Since: since, User: "p", Channels: []string{"pc"}, Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("History did not end")
		}
		page := history(t, s, q)
		if len(page) > q.Limit {
			t.Fatalf("History returned %d events, limit %d", len(page), q.Limit)
		}
		got = append(got, page...)
		if len(page) < q.Limit {
			break
		}
		q.Since = page[len(page)-1].Cursor
	}
	checkIDs(t, "paged History", got, want...)
}

func testHistoryAtHead(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	last := Append(t, s, ev("hh1", []string{"u1"}, ""))[0].Cursor
	checkIDs(t, "History at head", history(t, s, bridge.HistoryQuery{Since: last, User: "u1", Limit: 10}))
}

func testHistoryOtherEpoch(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	c := Append(t, s, ev("e1", []string{"u1"}, ""))[0].Cursor
	Append(t, s, ev("e2", []string{"u1"}, ""))
	for _, epoch := range []string{"zzzzzzzzzz", "0000000000", "other"} {
		if epoch == c.Epoch {
			continue
		}
		since := bridge.Cursor{Epoch: epoch, MS: c.MS, Seq: c.Seq}
		if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: since, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
			t.Errorf("History since %s = %v, want ErrHistoryExpired", since, err)
		}
	}
	if _, err := s.History(t.Context(), bridge.HistoryQuery{User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
		t.Errorf("History since the zero cursor = %v, want ErrHistoryExpired", err)
	}
}

func testHistoryFuture(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	c := Append(t, s, ev("f1", []string{"u1"}, ""))[0].Cursor
	for _, since := range []bridge.Cursor{
		{Epoch: c.Epoch, MS: c.MS, Seq: c.Seq + 1},
		{Epoch: c.Epoch, MS: c.MS + 1},
		{Epoch: c.Epoch, MS: c.MS + 3_600_000},
	} {
		if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: since, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
			t.Errorf("History since %s (head %s) = %v, want ErrHistoryExpired", since, c, err)
		}
	}
}

func testHistoryRetention(t *testing.T, open OpenFunc) {
	s := open(t, Options{HistoryTTL: 200 * time.Millisecond})
	old := Append(t, s, ev("r1", []string{"u1"}, ""))[0].Cursor
	Append(t, s, ev("r2", []string{"u1"}, ""))
	checkIDs(t, "History within the TTL", history(t, s, bridge.HistoryQuery{Since: old, User: "u1", Limit: 10}), "r2")
	time.Sleep(400 * time.Millisecond)
	fresh := Append(t, s, ev("r3", []string{"u1"}, ""))[0].Cursor
	if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: old, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
		t.Errorf("History since a cursor older than the TTL = %v, want ErrHistoryExpired", err)
	}
	Append(t, s, ev("r4", []string{"u1"}, ""))
	checkIDs(t, "History since a fresh cursor", history(t, s, bridge.HistoryQuery{Since: fresh, User: "u1", Limit: 10}), "r4")
}

// testHistoryIdleHead: the head cursor of an idle or empty stream stays
// resumable after the TTL, since nothing after it can have been lost. Fresh
// connections start from it.
func testHistoryIdleHead(t *testing.T, open OpenFunc) {
	s := open(t, Options{HistoryTTL: 200 * time.Millisecond})
	header, ok := s.(interface {
		Head(context.Context) (bridge.Cursor, error)
	})
	if !ok {
		t.Skip("no Head")
	}
	empty, err := header.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, "History at the empty head", history(t, s, bridge.HistoryQuery{Since: empty, User: "u1", Limit: 10}))
	Append(t, s, ev("ih1", []string{"u1"}, ""))
	checkIDs(t, "History from the empty head", history(t, s, bridge.HistoryQuery{Since: empty, User: "u1", Limit: 10}), "ih1")
	head, err := header.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	checkIDs(t, "History at an idle head past the TTL", history(t, s, bridge.HistoryQuery{Since: head, User: "u1", Limit: 10}))
	Append(t, s, ev("ih2", []string{"u1"}, ""))
	checkIDs(t, "History from an idle head", history(t, s, bridge.HistoryQuery{Since: head, User: "u1", Limit: 10}), "ih2")
}

func testTailCancel(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Tail(ctx, func(bridge.Batch) {}) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Tail = %v, want context.Canceled", err)
		}
		t.Logf("Tail returned %v after cancel", time.Since(start))
	case <-time.After(3 * time.Second):
		t.Fatal("Tail did not return within 3s of cancel")
	}
}

func testTailStartsAtEnd(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	Append(t, s, ev("before1", []string{"u1"}, ""), ev("before2", nil, "c"))
	r := StartTail(t, s)
	Append(t, s, ev("after", []string{"u1"}, ""))
	r.WaitIDs(t, 5*time.Second, "after")
	for _, e := range r.Events() {
		if e.ID == "before1" || e.ID == "before2" {
			t.Errorf("Tail delivered %s, appended before it began", e.ID)
		}
	}
}

func testConcurrentAppend(t *testing.T, open OpenFunc) {
	s := open(t, Options{})
	partitioned := Partitioned(t, s)
	r := StartTail(t, s)
	const writers, perWriter = 8, 40
	var wg sync.WaitGroup
	results := make([][]bridge.AppendResult, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < perWriter; i += 2 {
				// Writers share IDs: each ID must be appended once.
				user := "cu" + strconv.Itoa(w)
				if partitioned {
					// One partition remembers the shared ids.
					user = "cu"
				}
				a := ev(fmt.Sprintf("c%d", i), []string{user}, "")
				b := ev(fmt.Sprintf("c%d.%d", w, i), nil, "cc")
				res, err := s.Append(t.Context(), []*bridge.Event{a, b})
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				results[w] = append(results[w], res...)
			}
		})
	}
	wg.Wait()
	var ids []string
	for i := 0; i < perWriter; i += 2 {
		ids = append(ids, fmt.Sprintf("c%d", i))
		for w := range writers {
			ids = append(ids, fmt.Sprintf("c%d.%d", w, i))
		}
	}
	r.WaitIDs(t, 10*time.Second, ids...)
	r.CheckOrder(t)
	n := map[string]int{}
	for _, e := range r.Events() {
		n[e.ID]++
	}
	for _, id := range ids {
		if n[id] != 1 {
			t.Errorf("Tail delivered %s %d times, want 1", id, n[id])
		}
	}
	fresh := map[bridge.Cursor]bool{}
	for _, rs := range results {
		for _, res := range rs {
			if !res.Duplicate {
				if fresh[res.Cursor] {
					t.Errorf("cursor %s issued twice", res.Cursor)
				}
				fresh[res.Cursor] = true
			}
		}
	}
	if len(fresh) != len(ids) {
		t.Errorf("%d events appended, want %d", len(fresh), len(ids))
	}
}
