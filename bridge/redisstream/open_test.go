package redisstream

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/streamtest"
	"github.com/hookwire/hookwire/internal/redistest"
)

// TestOpen: Open finds out by itself whether a URL names one Redis or a
// node of a Redis Cluster (with an ACL user, from one seed or several),
// defaults the partitions (1, 16), records them, and refuses a replica
// with another count.
func TestOpen(t *testing.T) {
	single := redistest.Start(t)
	cl := redistest.StartCluster(t, 3, 0)
	for _, n := range append([]*redistest.Server{single}, cl.Nodes...) {
		// The ACL user may touch only hookwire's keys.
		if err := n.Client(t).Do(t.Context(), "ACL", "SETUSER", "hw", "on", ">s3cr3t", "~{hookwire*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
	}
	withUser := func(u string) string { return strings.Replace(u, "redis://", "redis://hw:s3cr3t@", 1) }
	for _, tt := range []struct {
		name    string
		url     string
		cluster bool
		parts   int
	}{
		{"one Redis", withUser(single.URL()) + "/0", false, 1},
		{"cluster, one seed", withUser(cl.Nodes[2].URL()), true, 16},
		{"cluster, every seed", withUser(cl.URL()), true, 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url, Options{ReadBlock: 300 * time.Millisecond}, func(c redis.UniversalClient) error {
				if _, ok := c.(*redis.ClusterClient); ok != tt.cluster {
					t.Errorf("instrumented a %T", c)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			if s.Cluster() != tt.cluster || s.Partitions() != tt.parts {
				t.Errorf("Open: cluster %v, %d partitions; want %v, %d", s.Cluster(), s.Partitions(), tt.cluster, tt.parts)
			}
			if err := s.Ready(t.Context()); err != nil {
				t.Errorf("Ready: %v", err)
			}
			r := streamtest.StartTail(t, s)
			id := "o." + tt.name // the two cluster cases share the bridge
			streamtest.Append(t, s, &bridge.Event{ID: id, Type: "t", Users: []string{"u"}})
			r.WaitIDs(t, 5*time.Second, id)
			_, err = Open(t.Context(), tt.url, Options{Partitions: tt.parts + 1}, nil)
			if !errors.Is(err, ErrPartitions) {
				t.Errorf("Open with %d partitions = %v, want ErrPartitions", tt.parts+1, err)
			}
		})
	}
	if _, err := Open(t.Context(), "redis://127.0.0.1:1", Options{}, nil); !errors.Is(err, bridge.ErrUnavailable) {
		t.Errorf("Open of a Redis that is down = %v, want ErrUnavailable", err)
	}
	if _, err := Open(t.Context(), "http://x", Options{}, nil); err == nil {
		t.Error("Open of an http URL succeeded")
	}
}

// TestOpenTLS: Open on rediss:// of one Redis and of a Redis Cluster (TLS
// on the cluster bus too) that accept TLS only, with the test CA trusted
// as an operator would (SSL_CERT_FILE): events are appended, delivered
// and deduplicated. redis:// to the same port fails.
func TestOpenTLS(t *testing.T) {
	tl := redistest.NewTLS(t)
	// Go reads the system roots once per process, at the first TLS
	// verification: no test of this package verifies one before.
	t.Setenv("SSL_CERT_FILE", tl.CAFile)
	single := redistest.Start(t, redistest.WithTLS(tl))
	cl := redistest.StartCluster(t, 3, 0, redistest.WithTLS(tl))
	for _, tt := range []struct {
		name    string
		url     string
		cluster bool
	}{
		{"one Redis", single.URL(), false},
		{"cluster", cl.URL(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.HasPrefix(tt.url, "rediss://") {
				t.Fatalf("URL %s", tt.url)
			}
			plain := strings.Replace(tt.url, "rediss://", "redis://", 1)
			if s, err := Open(t.Context(), plain, Options{Prefix: "tls"}, nil); err == nil {
				s.Close()
				t.Fatalf("Open(%s) of a TLS-only Redis succeeded", plain)
			}
			s, err := Open(t.Context(), tt.url, Options{Prefix: "tls", ReadBlock: 300 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if s.Cluster() != tt.cluster {
				t.Errorf("Cluster() = %v, want %v", s.Cluster(), tt.cluster)
			}
			r := streamtest.StartTail(t, s)
			var evs []*bridge.Event
			var ids []string
			for i := range 40 {
				ids = append(ids, "tls"+strconv.Itoa(i))
				evs = append(evs, event(ids[i], "u"+strconv.Itoa(i)))
			}
			res := streamtest.Append(t, s, evs...)
			checkAppended(t, evs, res, nil)
			again := streamtest.Append(t, s, evs[0])
			if !again[0].Duplicate {
				t.Errorf("a retried id over TLS was not a duplicate")
			}
			r.WaitIDs(t, 10*time.Second, ids...)
		})
	}
}
