package main

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hookwire/hookwire/internal/redistest"
)

// partitionOrder replaces tt.outOfOrder with the count of counters whose
// deliveries are out of publish order within one target (their user's
// events, the channel's events): with partitions that is the order the
// contract promises, not one total order.
func partitionOrder(l *ledger, cs []*counter, tt totals) totals {
	acc := l.snapshot()
	channel := map[string]bool{}
	for _, a := range acc {
		if a.user == "" {
			channel[a.id] = true
		}
	}
	tt.outOfOrder = 0
	for _, c := range cs {
		c.mu.Lock()
		got := slices.Clone(c.got)
		c.mu.Unlock()
		var u, ch []string
		for _, id := range got {
			if channel[id] {
				ch = append(ch, id)
			} else {
				u = append(u, id)
			}
		}
		if !sort.StringsAreSorted(u) || !sort.StringsAreSorted(ch) {
			tt.outOfOrder++
		}
	}
	return tt
}

// TestClusterNothingLost is the counting test on a 3-primary Redis
// Cluster with 16 partitions: three replicas, 120 subscribers (40 users
// and a channel), 400 events; one replica is SIGKILLed midway. Every
// accepted event reaches every matching subscriber exactly once (counted
// as raw frames on the wire and after the client's dedupe), in order per
// user and per channel.
func TestClusterNothingLost(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	cl := redistest.StartCluster(t, 3, 0)
	l, cs := killRun{
		redisURLs:   [3]string{cl.Nodes[0].URL(), cl.Nodes[1].URL(), cl.Nodes[2].URL()},
		subscribers: 120, users: 40, events: 400, gap: 4 * time.Millisecond, killAfter: time.Second,
	}.run(t)
	tt := partitionOrder(l, cs, check(l, cs, 30*time.Second, nil))
	t.Logf("cluster, replica killed: %v", tt)
	if !tt.exact() || tt.resets != 0 {
		t.Errorf("lost or repeated events: %v", tt)
	}
}

// TestClusterFailover: 3 primaries with a replica each. The primary of a
// user's partition is killed: its replica is promoted, appends and readers
// continue on it within seconds, and every event answered 202, before and
// after, is delivered once, with no reset. (Replication is asynchronous:
// the test lets the replica catch up before the kill. With
// HOOKWIRE_REDIS_MIN_REPLICAS=1 a 202 would wait for it, and after this
// failover, the promoted primary having no replica, every append to its
// partitions would get 503: see TestMinReplicas in bridge/redisstream.)
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	cl := redistest.StartCluster(t, 3, 1)
	env := prodEnv(cl.URL())
	a := startReplica(t, env)
	b := startReplica(t, env)
	keys := partitionKeys(t, cl)
	victim := cl.PrimaryOf(t, keys.EventsKeyOf("fo", ""))
	onA := a.connect(t, "token="+subToken(t, "fo"))
	onB := b.connect(t, "token="+subToken(t, "fo"))
	var want []string
	postUntil := func(id string, limit time.Duration) time.Duration {
		start := time.Now()
		for {
			st := post(t.Context(), []*replica{a, b}[len(want)%2].base, fmt.Sprintf(`{"id":%q,"type":"t","users":["fo"]}`, id))
			if st == http.StatusAccepted || st == http.StatusOK {
				want = append(want, id)
				return time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("POST %s not accepted within %v: %d", id, limit, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := range 10 {
		postUntil(fmt.Sprintf("f%02d", i), time.Second)
	}
	time.Sleep(300 * time.Millisecond) // the replica catches up
	victim.Kill()
	took := postUntil("f10", 20*time.Second)
	t.Logf("first append accepted %v after the primary was killed", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("failover took %v", took)
	}
	for i := 11; i < 20; i++ {
		postUntil(fmt.Sprintf("f%02d", i), 5*time.Second)
	}
	for name, s := range map[string]*subscriber{"A": onA, "B": onB} {
		got, _ := nextEvents(t, s, len(want))
		if !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v", name, got, want)
		}
		s.quiet(t, 300*time.Millisecond)
	}
}
