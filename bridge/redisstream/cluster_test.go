package redisstream

import (
	"errors"
	"fmt"
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

// TestConformanceCluster runs the conformance suite on a 3-primary Redis
// Cluster, with one partition (every key in one slot) and with 16 spread
// over the primaries, and on one Redis with 4 partitions.
func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0)
	crdb := cl.Client(t)
	single := redistest.Start(t)
	srdb := single.Client(t)
	var n atomic.Int64
	for _, tt := range []struct {
		name  string
		rdb   interface{}
		parts int
	}{
		{"cluster/partitions=1", crdb, 1},
		{"cluster/partitions=16", crdb, 16},
		{"single/partitions=4", srdb, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			streamtest.Run(t, func(t *testing.T, o streamtest.Options) bridge.Stream {
				prefix := fmt.Sprintf("t%d-%s", n.Add(1), strings.ReplaceAll(t.Name(), "/", "."))
				opts := Options{Prefix: prefix, Partitions: tt.parts, HistoryTTL: o.HistoryTTL, DedupeTTL: o.DedupeTTL, ReadBlock: 300 * time.Millisecond}
				if tt.name == "single/partitions=4" {
					return New(srdb, opts)
				}
				return New(crdb, opts)
			})
		})
	}
}

// TestEpochChangeInOnePartition: when one partition loses its history
// (its meta deleted, as after a FLUSH of its node or a failover to a
// replica without it), a resume whose view (user or channels) reads that
// partition gets ErrHistoryExpired (the hub's reset), and one that reads
// only other partitions resumes from the same cursor without it.
func TestEpochChangeInOnePartition(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0)
	single := redistest.Start(t)
	for _, tt := range []struct {
		name  string
		rdb   redis.UniversalClient
		parts int
	}{
		{"single/partitions=4", single.Client(t), 4},
		{"cluster/partitions=16", cl.Client(t), 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.rdb, Options{Prefix: "ep" + strconv.Itoa(tt.parts), Partitions: tt.parts})
			// lost is the user whose partition loses its history; kept
			// and the channel are in other partitions.
			lost := "lost"
			pl := s.partitionOf('u', lost)
			kept, ch := "", ""
			for i := 0; kept == "" || ch == ""; i++ {
				if u := fmt.Sprint("kept", i); kept == "" && s.partitionOf('u', u) != pl {
					kept = u
				}
				if c := fmt.Sprint("ch", i); ch == "" && s.partitionOf('c', c) != pl {
					ch = c
				}
			}
			lostCh := ""
			for i := 0; lostCh == ""; i++ {
				if c := fmt.Sprint("lc", i); s.partitionOf('c', c) == pl {
					lostCh = c
				}
			}
			first := streamtest.Append(t, s, event("e1", lost), event("e2", kept), &bridge.Event{ID: "e3", Type: "t", Channel: ch})
			since := first[2].Cursor
			streamtest.Append(t, s, event("e4", lost), event("e5", kept), &bridge.Event{ID: "e6", Type: "t", Channel: ch})
			if err := tt.rdb.Del(t.Context(), s.parts[pl].meta).Err(); err != nil {
				t.Fatal(err)
			}
			// The next append there starts a new epoch.
			streamtest.Append(t, s, event("e7", lost))

			for _, q := range []bridge.HistoryQuery{
				{Since: since, User: lost},
				{Since: since, User: kept, Channels: []string{lostCh}},
			} {
				if evs, err := s.History(t.Context(), q); !errors.Is(err, bridge.ErrHistoryExpired) {
					t.Errorf("resume of %s %v reading the partition that lost its history: %d events, %v; want ErrHistoryExpired", q.User, q.Channels, len(evs), err)
				}
			}
			evs, err := s.History(t.Context(), bridge.HistoryQuery{Since: since, User: kept, Channels: []string{ch}})
			if err != nil {
				t.Fatalf("resume reading other partitions only: %v", err)
			}
			var ids []string
			for _, e := range evs {
				ids = append(ids, e.ID)
			}
			// Events of different partitions come in entry ID order:
			// e5 and e6 may have come in either.
			if slices.Sort(ids); strings.Join(ids, ",") != "e5,e6" {
				t.Errorf("resume reading other partitions only got %v, want e5 and e6", ids)
			}
		})
	}
}
