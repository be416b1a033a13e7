package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/streamtest"
	"github.com/hookwire/hookwire/internal/redistest"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	var n atomic.Int64
	streamtest.Run(t, func(t *testing.T, o streamtest.Options) bridge.Stream {
		// One server, a fresh prefix per test. A short ReadBlock only
		// makes each Tail's cleanup faster; TestTailCancelDefaults
		// checks the defaults.
		prefix := fmt.Sprintf("t%d-%s", n.Add(1), strings.ReplaceAll(t.Name(), "/", "."))
		return New(rdb, Options{Prefix: prefix, HistoryTTL: o.HistoryTTL, DedupeTTL: o.DedupeTTL, ReadBlock: 300 * time.Millisecond})
	})
}

func TestTailCancelDefaults(t *testing.T) {
	srv := redistest.Start(t)
	s := New(srv.Client(t), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Tail(ctx, func(bridge.Batch) {}) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Tail = %v, want context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Tail did not return within 3s of cancel")
	}
}

func event(id string, users ...string) *bridge.Event {
	return &bridge.Event{ID: id, Type: "test", Users: users, Data: []byte(`{}`)}
}

// batchOf returns the index of the first batch delivering id, or -1.
func batchOf(bs []bridge.Batch, id string) int {
	for i, b := range bs {
		if slices.ContainsFunc(b.Events, func(e *bridge.Event) bool { return e.ID == id }) {
			return i
		}
	}
	return -1
}

func TestRestartEmpty(t *testing.T) {
	srv := redistest.Start(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	s := New(srv.Client(t), Options{ReadBlock: 300 * time.Millisecond, Logger: logger})
	r := streamtest.StartTail(t, s)
	c1 := streamtest.Append(t, s, event("e1", "u1"))[0].Cursor
	r.WaitIDs(t, 5*time.Second, "e1")

	srv.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, []*bridge.Event{event("lost", "u1")}); !errors.Is(err, bridge.ErrUnavailable) {
		t.Fatalf("Append while Redis is down = %v, want ErrUnavailable", err)
	}
	if _, err := s.History(ctx, bridge.HistoryQuery{Since: c1, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrUnavailable) {
		t.Errorf("History while Redis is down = %v, want ErrUnavailable", err)
	}
	if err := s.Ready(ctx); !errors.Is(err, bridge.ErrUnavailable) {
		t.Errorf("Ready while Redis is down = %v, want ErrUnavailable", err)
	}

	srv.Restart()
	// Appended at once: the tail must not miss it, whether the append or
	// the tail creates the new epoch.
	c3 := streamtest.Append(t, s, event("e3", "u1"))[0].Cursor
	if c3.Epoch == c1.Epoch {
		t.Fatalf("epoch %s kept after a restart without persistence", c3.Epoch)
	}
	r.WaitIDs(t, 10*time.Second, "e3")
	if !r.WaitFor(5*time.Second, func() bool { return r.Resets() > 0 }) {
		t.Fatal("Tail delivered no Reset after Redis restarted empty")
	}
	streamtest.Append(t, s, event("e4", "u1"))
	r.WaitIDs(t, 5*time.Second, "e4")

	bs := r.Batches()
	reset := slices.IndexFunc(bs, func(b bridge.Batch) bool { return b.Reset })
	// A Reset batch's events come after the reset.
	if i := batchOf(bs, "e3"); i < reset {
		t.Errorf("e3 delivered in batch %d, Reset in batch %d", i, reset)
	}
	if n := r.Resets(); n != 1 {
		t.Errorf("Tail delivered %d resets, want 1", n)
	}
	if i := batchOf(bs, "lost"); i >= 0 {
		t.Errorf("Tail delivered the event whose append failed")
	}
	for _, b := range bs[reset:] {
		for _, e := range b.Events {
			if e.Cursor.Epoch != c3.Epoch {
				t.Errorf("after Reset, Tail delivered %s of epoch %s", e.ID, e.Cursor.Epoch)
			}
		}
	}
	r.CheckOrder(t)
	if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: c1, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
		t.Errorf("History since a cursor of the lost epoch = %v, want ErrHistoryExpired", err)
	}
	got, err := s.History(t.Context(), bridge.HistoryQuery{Since: c3, User: "u1", Limit: 10})
	if err != nil || len(got) != 1 || got[0].ID != "e4" {
		t.Errorf("History since e3 = %v, %v; want [e4]", got, err)
	}
}

func TestRestartAppendOnly(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAppendOnly())
	s := New(srv.Client(t), Options{ReadBlock: 300 * time.Millisecond})
	r := streamtest.StartTail(t, s)
	c1 := streamtest.Append(t, s, event("a1", "u1"), event("a2", "u1"), event("a3", "u1"))[0].Cursor
	r.WaitIDs(t, 5*time.Second, "a1", "a2", "a3")
	srv.Kill()
	srv.Restart()
	res := streamtest.Append(t, s, event("a4", "u1"), event("a5", "u1"), event("a2", "u1"))
	if res[0].Cursor.Epoch != c1.Epoch {
		t.Errorf("epoch changed from %s to %s across a restart with persistence", c1.Epoch, res[0].Cursor.Epoch)
	}
	if !res[2].Duplicate {
		t.Errorf("a2 appended again after the restart: dedupe keys lost")
	}
	streamtest.Append(t, s, event("a6", "u1"))
	r.WaitIDs(t, 10*time.Second, "a1", "a2", "a3", "a4", "a5", "a6")
	if n := r.Resets(); n != 0 {
		t.Errorf("Tail delivered %d resets, want 0", n)
	}
	r.CheckOrder(t)
	count := map[string]int{}
	for _, e := range r.Events() {
		count[e.ID]++
	}
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
		if count[id] != 1 {
			t.Errorf("Tail delivered %s %d times, want 1", id, count[id])
		}
	}
	got, err := s.History(t.Context(), bridge.HistoryQuery{Since: c1, User: "u1", Limit: 10})
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if err != nil || !slices.Equal(ids, []string{"a2", "a3", "a4", "a5", "a6"}) {
		t.Errorf("History since a1 = %q, %v; want [a2 a3 a4 a5 a6]", ids, err)
	}
}

func TestTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	opts := Options{Prefix: "shared", ReadBlock: 300 * time.Millisecond}
	s1, s2 := New(srv.Client(t), opts), New(srv.Client(t), opts)
	r1, r2 := streamtest.StartTail(t, s1), streamtest.StartTail(t, s2)
	var ids []string
	for b := range 10 {
		var evs []*bridge.Event
		for i := range 10 {
			id := fmt.Sprintf("r%d.%d", b, i)
			ids = append(ids, id)
			evs = append(evs, event(id, "u"+strconv.Itoa(i)))
		}
		// Alternate the replica that appends.
		streamtest.Append(t, []*Stream{s1, s2}[b%2], evs...)
	}
	got1 := r1.WaitIDs(t, 10*time.Second, ids...)
	got2 := r2.WaitIDs(t, 10*time.Second, ids...)
	for i := range got1 {
		if got1[i].Cursor != got2[i].Cursor || got1[i].ID != ids[i] {
			t.Fatalf("replicas disagree at %d: %s %s, %s %s; want %s", i, got1[i].ID, got1[i].Cursor, got2[i].ID, got2[i].Cursor, ids[i])
		}
	}
	r1.CheckOrder(t)
	r2.CheckOrder(t)
}

// TestHistoryLostSilently: Redis loses its data while the tail's
// connection stays up (FLUSHALL): the idle check sees meta gone.
func TestHistoryLostSilently(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{ReadBlock: 200 * time.Millisecond})
	r := streamtest.StartTail(t, s)
	c1 := streamtest.Append(t, s, event("f1", "u1"))[0].Cursor
	r.WaitIDs(t, 5*time.Second, "f1")
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if !r.WaitFor(5*time.Second, func() bool { return r.Resets() > 0 }) {
		t.Fatal("Tail delivered no Reset after FLUSHALL")
	}
	c2 := streamtest.Append(t, s, event("f2", "u1"))[0].Cursor
	r.WaitIDs(t, 5*time.Second, "f2")
	if c2.Epoch == c1.Epoch {
		t.Errorf("epoch %s kept after FLUSHALL", c2.Epoch)
	}
	if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: c1, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
		t.Errorf("History since a cursor of the flushed epoch = %v, want ErrHistoryExpired", err)
	}
}

// TestMetaLost: only the meta hash is lost; the indexes keep entries of the
// old epoch, some with IDs after the new epoch's (a clock that went back).
func TestMetaLost(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{Prefix: "m", ReadBlock: 200 * time.Millisecond})
	r := streamtest.StartTail(t, s)
	old := streamtest.Append(t, s, event("m1", "u1"), event("m2", "u1"))
	r.WaitIDs(t, 5*time.Second, "m1", "m2")
	if err := rdb.Del(t.Context(), s.parts[0].meta).Err(); err != nil {
		t.Fatal(err)
	}
	// An entry far in the future, as if written by a clock ahead.
	if err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: s.parts[0].userKey("u2"), ID: "99999999999999-0", Values: []string{"o", ""}}).Err(); err != nil {
		t.Fatal(err)
	}
	res := streamtest.Append(t, s, event("n1", "u1", "u2"), event("n2", "u1"), event("n3", "u1"))
	if res[0].Cursor.Epoch == old[0].Cursor.Epoch {
		t.Fatalf("epoch kept after meta was deleted")
	}
	r.WaitIDs(t, 5*time.Second, "n1", "n2", "n3")
	if !r.WaitFor(5*time.Second, func() bool { return r.Resets() > 0 }) {
		t.Fatal("Tail delivered no Reset after meta was lost")
	}
	bs := r.Batches()
	if reset := slices.IndexFunc(bs, func(b bridge.Batch) bool { return b.Reset }); batchOf(bs, "n1") < reset {
		t.Errorf("n1 delivered before the Reset")
	}
	if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: old[0].Cursor, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
		t.Errorf("History since the old epoch = %v, want ErrHistoryExpired", err)
	}
	// A cursor of the new epoch before the old index entries: they are
	// skipped and the page is still filled.
	since := bridge.Cursor{Epoch: res[0].Cursor.Epoch, MS: old[0].Cursor.MS - 1}
	got, err := s.History(t.Context(), bridge.HistoryQuery{Since: since, User: "u1", Limit: 2})
	if err != nil || len(got) != 2 || got[0].ID != "n1" || got[1].ID != "n2" {
		t.Errorf("History with stale index entries = %v, %v; want [n1 n2]", got, err)
	}
	got, err = s.History(t.Context(), bridge.HistoryQuery{Since: since, User: "u2", Limit: 10})
	if err != nil || len(got) != 1 || got[0].ID != "n1" {
		t.Errorf("History of u2 = %v, %v; want [n1]", got, err)
	}
}

func TestHeadReady(t *testing.T) {
	srv := redistest.Start(t)
	s := New(srv.Client(t), Options{})
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready() = %v", err)
	}
	h, err := s.Head(t.Context())
	if err != nil || h.Epoch == "" || h.MS != 0 || h.Seq != 0 {
		t.Fatalf("Head() of an empty stream = %v, %v; want <epoch>-0-0", h, err)
	}
	if _, err := bridge.ParseCursor(h.String()); err != nil {
		t.Errorf("head %q does not parse: %v", h, err)
	}
	c := streamtest.Append(t, s, event("h1", "u"))[0].Cursor
	if c.Epoch != h.Epoch {
		t.Errorf("Append used epoch %s, Head created %s", c.Epoch, h.Epoch)
	}
	if h, err := s.Head(t.Context()); err != nil || h != c {
		t.Errorf("Head() = %v, %v; want %v", h, err, c)
	}
}

// TestACLURL: a client made by redis.ParseURL with user:password works.
func TestACLURL(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "hw", "on", ">s3cr3t", "~{hookwire}:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL("redis://hw:s3cr3t@" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, Options{})
	if err := s.Ready(t.Context()); err != nil {
		t.Fatalf("Ready() = %v", err)
	}
	streamtest.Append(t, s, event("acl1", "u"))
}

func TestKeys(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{Prefix: "k", HistoryTTL: time.Minute, DedupeTTL: 2 * time.Minute})
	streamtest.Append(t, s,
		&bridge.Event{ID: "k1", Type: "t", Users: []string{"a", "b", "a"}, Channel: "ch"},
		&bridge.Event{ID: "k2", Type: "t", Channel: "ch"})
	keys, err := rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{"{k}:c:ch", "{k}:events", "{k}:id:k1", "{k}:id:k2", "{k}:meta", "{k}:u:a", "{k}:u:b"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	for _, k := range []string{"{k}:u:a", "{k}:c:ch"} {
		if ttl := rdb.PTTL(t.Context(), k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL %s = %v, want about 1m", k, ttl)
		}
	}
	if ttl := rdb.PTTL(t.Context(), "{k}:id:k1").Val(); ttl <= time.Minute || ttl > 2*time.Minute {
		t.Errorf("PTTL of the dedupe key = %v, want about 2m", ttl)
	}
	if n := rdb.LLen(t.Context(), "{k}:u:a").Val(); n != 1 {
		t.Errorf("index of a has %d entries, want 1", n)
	}
}

// evalCalls returns how many EVALSHA and EVAL calls Redis has run.
func evalCalls(t *testing.T, rdb *redis.Client) (evalsha, eval int64) {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "cmdstat_evalsha" && k != "cmdstat_eval") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("INFO %q: %v", line, err)
		}
		if k == "cmdstat_evalsha" {
			evalsha = n
		} else {
			eval = n
		}
	}
	return evalsha, eval
}

// checkAppended checks Append's results for evs: duplicates where dup
// says (with the cursor of the event of that index), the others appended
// in order.
func checkAppended(t *testing.T, evs []*bridge.Event, res []bridge.AppendResult, dup map[int]int) {
	t.Helper()
	if len(res) != len(evs) {
		t.Fatalf("%d results for %d events", len(res), len(evs))
	}
	var last bridge.Cursor
	for i, r := range res {
		if j, ok := dup[i]; ok {
			if !r.Duplicate || r.Cursor != res[j].Cursor {
				t.Errorf("result %d = %+v, want a duplicate of %d (%s)", i, r, j, res[j].Cursor)
			}
			continue
		}
		if r.Duplicate || r.Cursor != evs[i].Cursor || r.Cursor.IsZero() {
			t.Errorf("result %d = %+v, event cursor %s", i, r, evs[i].Cursor)
		}
		if !last.IsZero() && !last.Before(r.Cursor) {
			t.Errorf("cursor %d %s not after %s", i, r.Cursor, last)
		}
		last = r.Cursor
	}
}

// TestAppendChunks: a large Append is split into script calls of at most
// 200 events (or about 1 MiB), in order, with duplicates across and within
// them.
func TestAppendChunks(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{ReadBlock: 300 * time.Millisecond})
	r := streamtest.StartTail(t, s)
	// Load the script first: the count below is of a warm Redis.
	if _, err := s.Append(t.Context(), []*bridge.Event{event("ch.warm", "u0")}); err != nil {
		t.Fatal(err)
	}
	evs := make([]*bridge.Event, 450)
	var ids []string
	dup := map[int]int{250: 10, 420: 419, 449: 0}
	for i := range evs {
		id := "ch" + strconv.Itoa(i)
		if j, ok := dup[i]; ok {
			id = evs[j].ID
		} else {
			ids = append(ids, id)
		}
		evs[i] = event(id, "u"+strconv.Itoa(i%7))
	}
	sha0, _ := evalCalls(t, rdb)
	res, err := s.Append(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if sha, _ := evalCalls(t, rdb); sha-sha0 != 3 {
		t.Errorf("%d script calls for 450 events, want 3", sha-sha0)
	}
	checkAppended(t, evs, res, dup)
	got := r.WaitIDs(t, 10*time.Second, ids...)
	for i, e := range got {
		if e.ID != ids[i] {
			t.Fatalf("Tail delivered %s at %d, want %s", e.ID, i, ids[i])
		}
	}

	// Three events of 600 KB: one call each.
	big := make([]byte, 600_000)
	evs = []*bridge.Event{event("big1", "u1"), event("big2", "u1"), event("big3", "u2")}
	for _, e := range evs {
		e.Data = big
	}
	sha0, _ = evalCalls(t, rdb)
	res = streamtest.Append(t, s, evs...)
	if sha, _ := evalCalls(t, rdb); sha-sha0 != 3 {
		t.Errorf("%d script calls for 3 events of 600 KB, want 3", sha-sha0)
	}
	checkAppended(t, evs, res, nil)
	got = r.WaitIDs(t, 10*time.Second, "big1", "big2", "big3")
	if len(got[2].Data) != len(big) {
		t.Errorf("big3 delivered with %d bytes of data", len(got[2].Data))
	}
}

// TestAppendNoScript: after SCRIPT FLUSH, every chunk of an Append runs
// again with EVAL, in order.
func TestAppendNoScript(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{ReadBlock: 300 * time.Millisecond})
	r := streamtest.StartTail(t, s)
	streamtest.Append(t, s, event("ns0", "u1"))
	if err := rdb.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	evs := make([]*bridge.Event, 450)
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = "ns" + strconv.Itoa(i+1)
		evs[i] = event(ids[i], "u"+strconv.Itoa(i%3))
	}
	_, eval0 := evalCalls(t, rdb)
	res, err := s.Append(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if _, eval := evalCalls(t, rdb); eval-eval0 < 1 {
		t.Errorf("no EVAL after SCRIPT FLUSH")
	}
	checkAppended(t, evs, res, nil)
	got := r.WaitIDs(t, 10*time.Second, ids...)
	for i, e := range got {
		if e.ID != ids[i] {
			t.Fatalf("Tail delivered %s at %d, want %s", e.ID, i, ids[i])
		}
	}
}

// TestDuplicatesOnly: a call of duplicates only writes nothing, not even
// a new epoch when meta is gone.
func TestDuplicatesOnly(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{})
	first := streamtest.Append(t, s, event("do1", "u1"))[0]
	if err := rdb.Del(t.Context(), s.parts[0].meta).Err(); err != nil {
		t.Fatal(err)
	}
	res := streamtest.Append(t, s, event("do1", "u1"), event("do1", "u2"))
	for i, r := range res {
		if !r.Duplicate || r.Cursor != first.Cursor {
			t.Errorf("result %d = %+v, want a duplicate of %s", i, r, first.Cursor)
		}
	}
	if n := rdb.Exists(t.Context(), s.parts[0].meta).Val(); n != 0 {
		t.Errorf("meta created by a call of duplicates only")
	}
}

// TestRetentionMark: w, the newest entry a trim may have removed, is set
// once the oldest entry is due, and a resume from before it is refused;
// the global stream and the indexes are trimmed.
func TestRetentionMark(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	// Small stream nodes, so that approximate trims remove entries.
	if err := rdb.ConfigSet(t.Context(), "stream-node-max-entries", "2").Err(); err != nil {
		t.Fatal(err)
	}
	const ttl = 300 * time.Millisecond
	s := New(rdb, Options{HistoryTTL: ttl})
	old := streamtest.Append(t, s, event("rm1", "u1"), event("rm2", "u1"), event("rm3", "u1"), event("rm4", "u1"))
	time.Sleep(ttl + 100*time.Millisecond)
	fresh := streamtest.Append(t, s, event("rm5", "u1"), event("rm6", "u1"))
	w := rdb.HGet(t.Context(), s.parts[0].meta, "w").Val()
	if want := fmt.Sprintf("%d-%d", old[3].Cursor.MS, old[3].Cursor.Seq); w != want {
		t.Errorf("w = %q, want %q (the newest entry due for trimming)", w, want)
	}
	for _, c := range []bridge.Cursor{old[0].Cursor, old[2].Cursor} {
		if _, err := s.History(t.Context(), bridge.HistoryQuery{Since: c, User: "u1", Limit: 10}); !errors.Is(err, bridge.ErrHistoryExpired) {
			t.Errorf("History since %s = %v, want ErrHistoryExpired", c, err)
		}
	}
	got, err := s.History(t.Context(), bridge.HistoryQuery{Since: fresh[0].Cursor, User: "u1", Limit: 10})
	if err != nil || len(got) != 1 || got[0].ID != "rm6" {
		t.Errorf("History since rm5 = %v, %v; want [rm6]", got, err)
	}
	// Trims run in one call in 16 on average: keep appending, one event
	// at a time, until both the stream and the index lost rm1.
	rm1 := fmt.Sprintf("%d-%d", old[0].Cursor.MS, old[0].Cursor.Seq)
	for i := 0; ; i++ {
		first := rdb.XRangeN(t.Context(), s.parts[0].events, "-", "+", 1).Val()
		firstIdx := rdb.LRange(t.Context(), s.parts[0].userKey("u1"), 0, 0).Val()
		rm1Member := member(old[0].Cursor.Pos(0))
		if len(first) > 0 && first[0].ID != rm1 && len(firstIdx) > 0 && firstIdx[0] != rm1Member {
			break
		}
		if i == 2000 {
			t.Fatalf("rm1 not trimmed after %d appends: stream starts at %v, index at %v", i, first, firstIdx)
		}
		streamtest.Append(t, s, event("rmx"+strconv.Itoa(i), "u1"))
	}
}
