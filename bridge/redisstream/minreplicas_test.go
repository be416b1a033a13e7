package redisstream

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/redistest"
)

// TestMinReplicas: with MinReplicas an Append returns once a replica
// holds its events (WAIT), on one Redis with a replica and on a cluster
// whose primaries have one; without a replica it fails with
// ErrUnavailable after WaitTimeout. It logs what the wait costs per
// sequential Append.
func TestMinReplicas(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(primary.Port())))
	rdb := primary.Client(t)
	deadline := time.Now().Add(10 * time.Second)
	for !containsOnline(rdb.Info(t.Context(), "replication").Val()) {
		if time.Now().After(deadline) {
			t.Fatal("replica not online")
		}
		time.Sleep(50 * time.Millisecond)
	}
	const n = 200
	per := func(s *Stream) time.Duration {
		start := time.Now()
		for i := range n {
			if _, err := s.Append(t.Context(), []*bridge.Event{{Type: "t", Users: []string{"u" + strconv.Itoa(i%10)}}}); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		return time.Since(start) / n
	}
	// Alternating runs, the first of each discarded (it loads the
	// script and dials).
	pair := func(a, b *Stream) (time.Duration, time.Duration) {
		per(a)
		per(b)
		var da, db time.Duration
		for range 3 {
			da += per(a)
			db += per(b)
		}
		return da / 3, db / 3
	}
	// A generous budget while the replica is up (a loaded machine can
	// take a while to acknowledge), a short one to see it run out.
	waiting := New(rdb, Options{Prefix: "wait", MinReplicas: 1, WaitTimeout: 5 * time.Second})
	plain, waited := pair(New(rdb, Options{Prefix: "plain"}), waiting)
	t.Logf("sequential Append on one Redis: %v without WAIT, %v with WAIT 1 (+%v)", plain, waited, waited-plain)

	// A Redis that lost its scripts: the appends are redone after
	// loading it, and still waited for.
	if err := rdb.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := waiting.Append(t.Context(), []*bridge.Event{{Type: "t", Users: []string{"u"}}, {Type: "t", Channel: "c"}}); err != nil {
		t.Errorf("Append after SCRIPT FLUSH: %v", err)
	}

	replica.Kill()
	short := New(rdb, Options{Prefix: "wait", MinReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := short.Append(t.Context(), []*bridge.Event{{Type: "t", Users: []string{"u"}}})
	if !errors.Is(err, bridge.ErrUnavailable) {
		t.Errorf("Append without a replica = %v, want ErrUnavailable", err)
	}
	t.Logf("without a replica: %v after %v", err, time.Since(start).Round(time.Millisecond))

	cl := redistest.StartCluster(t, 3, 1)
	crdb := cl.Client(t)
	cplain, cwaited := pair(New(crdb, Options{Prefix: "plain", Partitions: 16}), New(crdb, Options{Prefix: "wait", Partitions: 16, MinReplicas: 1, WaitTimeout: 5 * time.Second}))
	t.Logf("sequential Append on a 3+3 cluster, 16 partitions: %v without WAIT, %v with WAIT 1 (+%v)", cplain, cwaited, cwaited-cplain)
}

func containsOnline(info string) bool {
	for i := 0; i+len("state=online") <= len(info); i++ {
		if info[i:i+len("state=online")] == "state=online" {
			return true
		}
	}
	return false
}
