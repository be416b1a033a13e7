package redisstream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/streamtest"
	"github.com/hookwire/hookwire/internal/redistest"
)

// TestGroupCommit: concurrent Appends share round trips (fewer script
// calls than Appends), each gets the results of its own events, and ids
// posted by two callers at once are appended once: one caller gets the
// append, the other the duplicate with its cursor.
func TestGroupCommit(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{ReadBlock: 300 * time.Millisecond})
	r := streamtest.StartTail(t, s)
	const callers, each = 32, 40
	type got struct {
		ev  *bridge.Event
		res bridge.AppendResult
	}
	results := make([][]got, callers)
	sha0, _ := evalCalls(t, rdb)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				// Callers 0 and 1 post the same ids: shared ids.
				id := fmt.Sprintf("g%d-%d", c, i)
				if c < 2 {
					id = fmt.Sprintf("shared-%d", i)
				}
				evs := []*bridge.Event{event(id, fmt.Sprint("u", c))}
				if i%5 == 0 {
					evs = append(evs, event(id+"-b", "v"))
				}
				res, err := s.Append(t.Context(), evs)
				if err != nil {
					t.Error(err)
					return
				}
				if len(res) != len(evs) {
					t.Errorf("%d results for %d events", len(res), len(evs))
					return
				}
				for k := range evs {
					results[c] = append(results[c], got{evs[k], res[k]})
				}
			}
		})
	}
	wg.Wait()
	sha, _ := evalCalls(t, rdb)
	calls := int64(callers * each)
	t.Logf("%d Appends in %d script calls", calls, sha-sha0)
	if sha-sha0 >= calls {
		t.Errorf("%d script calls for %d concurrent Appends: none shared", sha-sha0, calls)
	}

	byCursor := map[bridge.Cursor]string{}
	var want []string
	appended := map[string]int{}
	for _, rs := range results {
		for _, g := range rs {
			if g.res.Cursor.IsZero() {
				t.Fatalf("%s: zero cursor", g.ev.ID)
			}
			if prev, ok := byCursor[g.res.Cursor]; ok && prev != g.ev.ID {
				t.Fatalf("cursor %s answered for %s and %s", g.res.Cursor, prev, g.ev.ID)
			}
			byCursor[g.res.Cursor] = g.ev.ID
			if !g.res.Duplicate {
				appended[g.ev.ID]++
				want = append(want, g.ev.ID)
			}
		}
	}
	for id, n := range appended {
		if n != 1 {
			t.Errorf("%s appended %d times", id, n)
		}
	}
	for i := range each {
		id := fmt.Sprintf("shared-%d", i)
		if appended[id] != 1 {
			t.Errorf("%s appended %d times by the two callers, want 1", id, appended[id])
		}
	}
	// The stream holds each appended event once, at the cursor its
	// caller was given.
	evs := r.WaitIDs(t, 10*time.Second, want...)
	for _, e := range evs {
		if byCursor[e.Cursor] != e.ID {
			t.Errorf("stream has %s at %s, its caller was told %s", e.ID, e.Cursor, byCursor[e.Cursor])
		}
	}
}

// TestGroupCancelledWaiter: a caller that gives up while queued gets its
// context's error at once; the others are not held up.
func TestGroupCancelledWaiter(t *testing.T) {
	var g group
	release := make(chan struct{})
	slow := func(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, []error) {
		<-release
		return make([]bridge.AppendResult, len(evs)), make([]error, len(evs))
	}
	first := make(chan error, 1)
	go func() {
		_, err := g.append(t.Context(), []*bridge.Event{{ID: "a"}}, slow)
		first <- err
	}()
	for {
		g.mu.Lock()
		busy := g.busy
		g.mu.Unlock()
		if busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.append(ctx, []*bridge.Event{{ID: "b"}}, slow); err == nil {
		t.Fatal("a cancelled waiter got no error")
	}
	other := make(chan error, 1)
	go func() {
		res, err := g.append(t.Context(), []*bridge.Event{{ID: "c"}, {ID: "d"}}, slow)
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("%d results for 2 events", len(res))
		}
		other <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	for _, ch := range []chan error{first, other} {
		select {
		case err := <-ch:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an Append did not return")
		}
	}
}

// TestGroupHandOver: the round after a round trip is made by the first
// queued caller; when that caller gives up, the round goes to the next one,
// whose events are appended and answered, without the leaver's.
func TestGroupHandOver(t *testing.T) {
	var g group
	release := make(chan struct{})
	var mu sync.Mutex
	var rounds [][]string
	fn := func(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, []error) {
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
		mu.Lock()
		rounds = append(rounds, ids)
		first := len(rounds) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return make([]bridge.AppendResult, len(evs)), make([]error, len(evs))
	}
	queued := func(n int) {
		t.Helper()
		for range 5000 {
			g.mu.Lock()
			k := len(g.waiting)
			g.mu.Unlock()
			if k == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("%d calls never queued", n)
	}
	type answer struct {
		n   int
		err error
	}
	run := func(ctx context.Context, ids ...string) chan answer {
		ch := make(chan answer, 1)
		var evs []*bridge.Event
		for _, id := range ids {
			evs = append(evs, &bridge.Event{ID: id})
		}
		go func() {
			res, err := g.append(ctx, evs, fn)
			ch <- answer{len(res), err}
		}()
		return ch
	}
	first := run(t.Context(), "a")
	for {
		g.mu.Lock()
		busy := g.busy
		g.mu.Unlock()
		if busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	leaver := run(ctx, "b")
	queued(1)
	next := run(t.Context(), "c", "d")
	queued(2)
	cancel()
	select {
	case a := <-leaver:
		if a.err == nil {
			t.Fatal("the caller that gave up got no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller that gave up did not return")
	}
	close(release)
	for _, want := range []struct {
		ch chan answer
		n  int
	}{{first, 1}, {next, 2}} {
		select {
		case a := <-want.ch:
			if a.err != nil || a.n != want.n {
				t.Errorf("got %d results, %v; want %d", a.n, a.err, want.n)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an Append did not return")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(rounds) != "[[a] [c d]]" {
		t.Errorf("rounds %v, want [[a] [c d]]", rounds)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy || len(g.waiting) != 0 {
		t.Errorf("group busy %v with %d queued after all returned", g.busy, len(g.waiting))
	}
}

// TestGroupLeaderSpan: a round led by a queued caller runs under that
// caller's trace span (the Redis span nests under its request), and not
// under its cancellation.
func TestGroupLeaderSpan(t *testing.T) {
	var g group
	release := make(chan struct{})
	spans := make(chan trace.SpanContext, 2)
	fn := func(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, []error) {
		spans <- trace.SpanContextFromContext(ctx)
		if evs[0].ID == "a" {
			<-release
		}
		return make([]bridge.AppendResult, len(evs)), make([]error, len(evs))
	}
	first := make(chan error, 1)
	go func() {
		_, err := g.append(t.Context(), []*bridge.Event{{ID: "a"}}, fn)
		first <- err
	}()
	<-spans // the first round is in flight
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	second := make(chan error, 1)
	go func() {
		_, err := g.append(trace.ContextWithSpanContext(t.Context(), sc), []*bridge.Event{{ID: "b"}}, fn)
		second <- err
	}()
	for {
		g.mu.Lock()
		n := len(g.waiting)
		g.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	select {
	case got := <-spans:
		if !got.Equal(sc) {
			t.Errorf("the led round ran under span %v, want the leader's %v", got, sc)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the queued caller led no round")
	}
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Error(err)
		}
	}
}
