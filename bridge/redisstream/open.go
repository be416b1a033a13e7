package redisstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Instrument is called with the client Open made, before first use (to add
// tracing and metrics hooks).
type Instrument func(redis.UniversalClient) error

// Open connects to the Redis of url, which names one Redis or any node of
// a Redis Cluster (more seed nodes as ?addr=host:port&addr=…; redis:// or
// rediss://, user:password@ for ACL users). It finds out which by asking a
// node INFO cluster (cluster_enabled:1), makes a single or cluster
// client, and returns the Stream on it; Stream.Close closes the client.
//
// opts.Partitions zero means 1 on one Redis and 16 on a Cluster. Open
// records the partition count in Redis, or fails with ErrPartitions when
// the bridge already runs with another.
//
// Unless the URL sets them, the client fails fast when Redis is down
// (max_retries 1, dial timeout 2s), so that publishers get 503 and retry
// instead of hanging, and sends no CLIENT SETINFO (it fails on Redis before
// 7.2 and would show as an error span on every new connection).
func Open(ctx context.Context, url string, opts Options, instrument Instrument) (*Stream, error) {
	cluster, err := isCluster(ctx, url)
	if err != nil {
		return nil, err
	}
	var rdb redis.UniversalClient
	if cluster {
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis URL: %w", err)
		}
		if o.MaxRetries == 0 {
			o.MaxRetries = 1
		}
		if o.DialerRetries == 0 {
			o.DialerRetries = 2
		}
		if o.DialTimeout == 0 {
			o.DialTimeout = 2 * time.Second
		}
		o.DisableIdentity = true
		if opts.Partitions <= 0 {
			opts.Partitions = DefaultClusterPartitions
		}
		if o.PoolSize == 0 {
			// Each partition's reader holds a connection of its
			// node's pool while it blocks.
			o.PoolSize = 10*runtime.GOMAXPROCS(0) + opts.Partitions
		}
		rdb = redis.NewClusterClient(o)
	} else {
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis URL: %w", err)
		}
		if o.MaxRetries == 0 {
			o.MaxRetries = 1
		}
		if o.DialerRetries == 0 {
			o.DialerRetries = 2
		}
		if o.DialTimeout == 0 {
			o.DialTimeout = 2 * time.Second
		}
		o.DisableIdentity = true
		if opts.Partitions <= 0 {
			opts.Partitions = 1
		}
		if o.PoolSize == 0 {
			o.PoolSize = 10*runtime.GOMAXPROCS(0) + opts.Partitions
		}
		rdb = redis.NewClient(o)
	}
	closeOnce := sync.OnceValue(rdb.Close)
	if instrument != nil {
		if err := instrument(rdb); err != nil {
			closeOnce()
			return nil, err
		}
	}
	s := New(rdb, opts)
	s.closeClient = closeOnce
	if err := s.checkPartitions(ctx); err != nil {
		closeOnce()
		return nil, err
	}
	return s, nil
}

// isCluster asks the seed nodes of url, in turn, INFO cluster, until one
// answers.
func isCluster(ctx context.Context, url string) (bool, error) {
	o, err := redis.ParseClusterURL(url)
	if err != nil {
		// Not a cluster URL (a database number, single-node options):
		// one Redis.
		if _, err2 := redis.ParseURL(url); err2 != nil {
			return false, fmt.Errorf("redis URL: %w", err2)
		}
		return false, nil
	}
	var errs []error
	for _, addr := range o.Addrs {
		var tc *tls.Config
		if o.TLSConfig != nil {
			tc = o.TLSConfig.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		c := redis.NewClient(&redis.Options{
			Addr: addr, Username: o.Username, Password: o.Password, TLSConfig: tc,
			DialTimeout: 2 * time.Second, MaxRetries: -1, DisableIdentity: true,
		})
		info, err := c.Info(ctx, "cluster").Result()
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		return strings.Contains(info, "cluster_enabled:1"), nil
	}
	return false, unavailable("detect Redis Cluster", errors.Join(errs...))
}
