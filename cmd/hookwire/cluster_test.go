package main

// End-to-end tests of a bridge on a Redis Cluster: real replicas (serve
// in-process, or the hookwire binary where a test kills one) on a real
// 3-primary cluster on loopback, started by internal/redistest.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/redisstream"
	"github.com/hookwire/hookwire/internal/redistest"
	"github.com/hookwire/hookwire/internal/syncbuf"
)

// partitionKeys maps users and channels to the stream key of their
// partition, as the replicas (default prefix, 16 partitions) place them.
func partitionKeys(t *testing.T, cl *redistest.Cluster) *redisstream.Stream {
	return redisstream.New(cl.Client(t), redisstream.Options{Partitions: redisstream.DefaultClusterPartitions})
}

// posIn returns the position in partition p of an event frame's cursor.
func posIn(t *testing.T, f map[string]any, p int) bridge.PartPos {
	t.Helper()
	s, _ := f["cursor"].(string)
	c, err := bridge.ParseCursor(s)
	if err != nil || c.Partitions() != redisstream.DefaultClusterPartitions {
		t.Fatalf("frame cursor %q: %v (%d partitions)", s, err, c.Partitions())
	}
	if len(s) > bridge.MaxCursorLen {
		t.Errorf("cursor of %d bytes", len(s))
	}
	return c.Pos(p)
}

// nextEvents reads n event frames from s (skipping none: any other frame
// fails the test) and returns them by id.
func nextEvents(t *testing.T, s *subscriber, n int) (ids []string, frames []map[string]any) {
	t.Helper()
	for range n {
		f := s.next(t)
		if f["type"] != "event" {
			t.Fatalf("frame %v, want an event", f)
		}
		ids = append(ids, f["id"].(string))
		frames = append(frames, f)
	}
	return ids, frames
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestClusterTwoReplicas: two replicas on a 3-primary cluster, one given a
// single node, the other every node as seeds, deliver, dedupe and resume
// across replicas and partitions as on one Redis, keep each user's order
// under concurrent publishers, and a replica with another partition count
// refuses to start.
func TestClusterTwoReplicas(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0)
	a := serveInProcess(t, prodEnv(cl.Nodes[1].URL())).asReplica(t)
	b := serveInProcess(t, prodEnv(cl.URL())).asReplica(t)
	for _, r := range []*replica{a, b} {
		if log := r.stderr.String(); !strings.Contains(log, `"broker":"redis-cluster"`) || !strings.Contains(log, `"partitions":16`) {
			t.Fatalf("startup log does not say redis-cluster with 16 partitions:\n%s", log)
		}
	}

	onA := a.connect(t, "token="+subToken(t, "42"))
	onB := b.connect(t, "token="+subToken(t, "42"))
	other := b.connect(t, "token="+subToken(t, "43"))
	priceA := a.connect(t, "token="+subToken(t, "7", "prices.*")+"&channels=prices.EURUSD")
	priceB := b.connect(t, "token="+subToken(t, "8", "prices.*")+"&channels=prices.EURUSD")
	status, body := a.post(t, testAPIKey, `{"id":"c_1","type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`)
	if status != http.StatusAccepted || body["cursor"] == "" {
		t.Fatalf("POST = %d %v", status, body)
	}
	for name, s := range map[string]*subscriber{"A": onA, "B": onB} {
		if f := s.next(t); f["type"] != "event" || f["id"] != "c_1" {
			t.Errorf("%s got %v", name, f)
		}
	}
	if status, _ := b.post(t, testAPIKey, `{"id":"c_p1","type":"price","channel":"prices.EURUSD","data":1.08}`); status != http.StatusAccepted {
		t.Fatalf("POST channel = %d", status)
	}
	for name, s := range map[string]*subscriber{"priceA": priceA, "priceB": priceB} {
		if f := s.next(t); f["id"] != "c_p1" || f["channel"] != "prices.EURUSD" {
			t.Errorf("%s got %v", name, f)
		}
	}
	// Idempotency across replicas: the same id on B is a duplicate,
	// delivered once.
	if status, dup := b.post(t, testAPIKey, `{"id":"c_1","type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`); status != http.StatusOK || dup["duplicate"] != true {
		t.Errorf("duplicate POST = %d %v", status, dup)
	}
	// An event to users of several partitions reaches each once.
	keys := partitionKeys(t, cl)
	var far string
	for i := 0; far == ""; i++ {
		if u := fmt.Sprintf("far%d", i); keys.EventsKeyOf(u, "") != keys.EventsKeyOf("42", "") {
			far = u
		}
	}
	onFar := a.connect(t, "token="+subToken(t, far))
	if status, _ := a.post(t, testAPIKey, fmt.Sprintf(`{"id":"c_2","type":"t","users":["42",%q]}`, far)); status != http.StatusAccepted {
		t.Fatalf("POST to two partitions = %d", status)
	}
	for name, s := range map[string]*subscriber{"A": onA, "B": onB, "far": onFar} {
		if f := s.next(t); f["id"] != "c_2" {
			t.Errorf("%s got %v", name, f)
		}
	}
	other.quiet(t, 300*time.Millisecond)
	for _, s := range []*subscriber{onA, onB, onFar} {
		s.quiet(t, 0)
	}

	t.Run("resume across replicas and partitions", func(t *testing.T) {
		chans := []string{"news.a", "news.b", "prices.EURUSD"}
		q := "token=" + subToken(t, "r1", "news.*", "prices.*") + "&channels=" + strings.Join(chans, ",")
		var parts []string
		for _, ch := range chans {
			parts = append(parts, keys.EventsKeyOf("", ch))
		}
		t.Logf("partitions read: user %s, channels %v", keys.EventsKeyOf("r1", ""), parts)
		postSet := func(r *replica, prefix string) []string {
			ids := []string{prefix + ".u"}
			if st, _ := r.post(t, testAPIKey, fmt.Sprintf(`{"id":%q,"type":"t","users":["r1"]}`, prefix+".u")); st != http.StatusAccepted {
				t.Fatalf("POST = %d", st)
			}
			for _, ch := range chans {
				id := prefix + "." + ch
				ids = append(ids, id)
				if st, _ := r.post(t, testAPIKey, fmt.Sprintf(`{"id":%q,"type":"t","channel":%q}`, id, ch)); st != http.StatusAccepted {
					t.Fatalf("POST = %d", st)
				}
			}
			return ids
		}
		s1 := a.connect(t, q)
		first := postSet(b, "s1")
		got, frames := nextEvents(t, s1, len(first))
		if !sameSet(got, first) {
			t.Fatalf("live = %v, want %v", got, first)
		}
		cursor := frames[len(frames)-1]["cursor"].(string)
		s1.ws.Close()
		second := postSet(a, "s2")
		s2 := b.connect(t, q+"&since="+cursor)
		got, _ = nextEvents(t, s2, len(second))
		if !sameSet(got, second) {
			t.Errorf("replay on the other replica = %v, want %v", got, second)
		}
		live := postSet(b, "s3")
		got, _ = nextEvents(t, s2, len(live))
		if !sameSet(got, live) {
			t.Errorf("live after replay = %v, want %v", got, live)
		}
		s2.quiet(t, 300*time.Millisecond)
	})

	t.Run("per-user order under concurrent publishers", func(t *testing.T) {
		const pubs, per = 4, 25
		sa := a.connect(t, "token="+subToken(t, "ord"))
		sb := b.connect(t, "token="+subToken(t, "ord"))
		var wg sync.WaitGroup
		for p := range pubs {
			wg.Go(func() {
				for i := range per {
					r := []*replica{a, b}[(p+i)%2]
					if st := post(t.Context(), r.base, fmt.Sprintf(`{"id":"o%d.%03d","type":"t","users":["ord"]}`, p, i)); st != http.StatusAccepted {
						t.Errorf("POST = %d", st)
						return
					}
				}
			})
		}
		wg.Wait()
		for name, s := range map[string]*subscriber{"A": sa, "B": sb} {
			ids, frames := nextEvents(t, s, pubs*per)
			var last bridge.PartPos
			lastOf := map[string]string{}
			for i, f := range frames {
				pos := posIn(t, f, keys.PartitionOf("ord", ""))
				if i > 0 && !last.Before(pos) {
					t.Errorf("%s: %s at %+v after %+v", name, ids[i], pos, last)
				}
				last = pos
				pub := strings.SplitN(ids[i], ".", 2)[0]
				if ids[i] <= lastOf[pub] {
					t.Errorf("%s: %s after %s", name, ids[i], lastOf[pub])
				}
				lastOf[pub] = ids[i]
			}
		}
	})

	t.Run("another partition count refuses to start", func(t *testing.T) {
		// serve's error is what main prints before exiting 1.
		env := append(prodEnv(cl.URL()), "HOOKWIRE_PARTITIONS=8")
		var log syncbuf.Buffer
		cfg, err := parseServe([]string{"--listen", "127.0.0.1:0"}, envGetenv(env), &log)
		if err == nil {
			err = serve(t.Context(), cfg, &log, &log, func(string) { t.Error("serve with 8 partitions listens") })
		}
		if err == nil || !strings.Contains(err.Error(), "HOOKWIRE_PARTITIONS=8") || !strings.Contains(err.Error(), "holds 16") {
			t.Errorf("serve with 8 partitions: %v\n%s", err, log.String())
		}
	})
}

// TestClusterNodeKillRestart: a primary (with AOF) is killed: events whose
// partition is there get 503, the others 202 and are delivered, /readyz
// stays 200; after the restart its partitions accept and deliver again,
// and nothing answered 202 was lost.
func TestClusterNodeKillRestart(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0, redistest.WithAppendOnly())
	a := startReplica(t, prodEnv(cl.URL()))
	b := startReplica(t, prodEnv(cl.URL()))
	keys := partitionKeys(t, cl)
	victim := cl.PrimaryOf(t, keys.EventsKeyOf("down", ""))
	var up string
	for i := 0; up == ""; i++ {
		if u := fmt.Sprintf("up%d", i); cl.PrimaryOf(t, keys.EventsKeyOf(u, "")) != victim {
			up = u
		}
	}
	downA := a.connect(t, "token="+subToken(t, "down"))
	upB := b.connect(t, "token="+subToken(t, up))
	for i := range 5 {
		if st, _ := a.post(t, testAPIKey, fmt.Sprintf(`{"id":"d%d","type":"t","users":["down"]}`, i)); st != http.StatusAccepted {
			t.Fatalf("POST before the kill = %d", st)
		}
	}
	if got, _ := nextEvents(t, downA, 5); !slices.Equal(got, []string{"d0", "d1", "d2", "d3", "d4"}) {
		t.Fatalf("before the kill: %v", got)
	}

	victim.Kill()
	start := time.Now()
	st, _ := b.post(t, testAPIKey, `{"id":"d_refused","type":"t","users":["down"]}`)
	t.Logf("POST to the dead node's partition: %d after %v", st, time.Since(start).Round(time.Millisecond))
	if st != http.StatusServiceUnavailable {
		t.Errorf("POST to a partition on the dead node = %d, want 503", st)
	}
	for i := range 5 {
		if st, _ := a.post(t, testAPIKey, fmt.Sprintf(`{"id":"up%d","type":"t","users":[%q]}`, i, up)); st != http.StatusAccepted {
			t.Errorf("POST to a live partition during the outage = %d, want 202", st)
		}
	}
	if got, _ := nextEvents(t, upB, 5); !slices.Equal(got, []string{"up0", "up1", "up2", "up3", "up4"}) {
		t.Errorf("during the outage: %v", got)
	}
	for _, r := range []*replica{a, b} {
		resp, err := http.Get(r.base + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz during a one-node outage: %v %v", resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}

	victim.Restart()
	cl.WaitOK(t, 20*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for i := 5; i < 10; i++ {
		for {
			st, _ := b.post(t, testAPIKey, fmt.Sprintf(`{"id":"d%d","type":"t","users":["down"]}`, i))
			if st == http.StatusAccepted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("POST after the restart = %d", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("partition accepting again %v after the kill", time.Since(start).Round(time.Millisecond))
	got, _ := nextEvents(t, downA, 5)
	if !slices.Equal(got, []string{"d5", "d6", "d7", "d8", "d9"}) {
		t.Errorf("after the restart: %v", got)
	}
	// Nothing lost: a fresh connection replays all ten from the start.
	s := b.connect(t, "token="+subToken(t, "down"))
	s.quiet(t, 200*time.Millisecond)
	downA.quiet(t, 0)
}
