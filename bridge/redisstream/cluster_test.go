package redisstream

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
