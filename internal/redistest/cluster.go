package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Cluster is a Redis Cluster of Servers on loopback: primaries, each
// with its replicas, slots spread by redis-cli --cluster create. Nodes
// time out after 1s (so a replica is promoted within a few seconds), and
// the cluster serves the slots it has while others are down
// (cluster-require-full-coverage no).
type Cluster struct {
	tb       testing.TB
	Nodes    []*Server
	replicas int
}

// StartCluster starts primaries * (1 + replicas) cluster-enabled servers
// with opts, creates the cluster and waits until every node reports
// cluster_state:ok. It is skipped (or fails in CI) when redis-server or
// redis-cli is missing.
func StartCluster(tb testing.TB, primaries, replicas int, opts ...Option) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("redistest: skipped under -short")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redistest: redis-cli not found (CI is set): %v", err)
		}
		tb.Skipf("redistest: redis-cli not found: %v", err)
	}
	opts = append(opts, WithArgs(
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
		"--cluster-replica-validity-factor", "0",
	))
	c := &Cluster{tb: tb, replicas: replicas}
	n := primaries * (1 + replicas)
	addrs := make([]string, n)
	for i := range n {
		s := Start(tb, opts...)
		c.Nodes = append(c.Nodes, s)
		addrs[i] = s.Addr()
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	if t := c.Nodes[0].tls; t != nil {
		args = append([]string{"--tls", "--cacert", t.CAFile}, args...)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitOK(tb, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for replicas > 0 {
		err := c.synced()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// URL returns "redis://node0?addr=node1&addr=…", a seed list of every node
// ("rediss://…" with WithTLS).
func (c *Cluster) URL() string {
	u := c.Nodes[0].URL()
	for i, s := range c.Nodes[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + s.Addr()
	}
	return u
}

// Client returns a new cluster client of c, closed in tb.Cleanup.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, TLSConfig: c.Nodes[0].tls.clientConfig(), DisableIdentity: true})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// WaitOK waits until every running node reports cluster_state:ok and
// every slot is served by a primary that answers; at the start, also until
// every primary has its replicas online (in sync).
func (c *Cluster) WaitOK(tb testing.TB, d time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		err := c.ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: cluster not ok within %v: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) ok() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.tls.clientConfig(), DisableIdentity: true, MaxRetries: -1})
		info, err := rdb.ClusterInfo(ctx).Result()
		rdb.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("%s: not ok", s.Addr())
		}
	}
	return nil
}

// synced reports whether every primary has c.replicas replicas online.
func (c *Cluster) synced() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.tls.clientConfig(), DisableIdentity: true, MaxRetries: -1})
		info, err := rdb.Info(ctx, "replication").Result()
		rdb.Close()
		if err != nil {
			return err
		}
		if strings.Contains(info, "role:master") && strings.Count(info, "state=online") < c.replicas {
			return fmt.Errorf("%s: replicas not online", s.Addr())
		}
	}
	return nil
}

// PrimaryOf returns the running node that is the primary of key's slot.
func (c *Cluster) PrimaryOf(tb testing.TB, key string) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.tls.clientConfig(), DisableIdentity: true, MaxRetries: -1})
		slots, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			rdb.Close()
			continue
		}
		slot, err := rdb.ClusterKeySlot(ctx, key).Result()
		rdb.Close()
		if err != nil {
			continue
		}
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
				for _, n := range c.Nodes {
					if n.Addr() == r.Nodes[0].Addr {
						return n
					}
				}
			}
		}
	}
	tb.Fatalf("redistest: no primary found for %q", key)
	return nil
}

// Primaries returns the running nodes that are primaries.
func (c *Cluster) Primaries(tb testing.TB) []*Server {
	tb.Helper()
	var out []*Server
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.tls.clientConfig(), DisableIdentity: true, MaxRetries: -1})
		info, err := rdb.Info(ctx, "replication").Result()
		rdb.Close()
		if err == nil && strings.Contains(info, "role:master") {
			out = append(out, s)
		}
	}
	return out
}
