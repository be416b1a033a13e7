package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/redistest"
)

// BenchmarkHistoryOneUserAmongMillion resumes one user with 10 retained
// events among 10,000 and 1,000,000 other retained events: History's cost
// must not depend on the others.
func BenchmarkHistoryOneUserAmongMillion(b *testing.B) {
	for _, tt := range []struct {
		name   string
		others int
	}{
		{"others=1e4", 10_000},
		{"others=1e6", 1_000_000},
	} {
		b.Run(tt.name, func(b *testing.B) {
			// b.Loop calls this function once, so the setup runs once.
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			s := New(rdb, Options{})
			since := fill(b, s, tt.others)
			info := rdb.Info(b.Context(), "memory").Val()
			b.Logf("%d other events appended; redis %s", tt.others, usedMemory(info))
			q := bridge.HistoryQuery{Since: since, User: "me", Channels: []string{"me.news"}, Limit: 500}
			for b.Loop() {
				evs, err := s.History(b.Context(), q)
				if err != nil || len(evs) != 10 {
					b.Fatalf("History = %d events, %v; want 10", len(evs), err)
				}
			}
		})
	}
}

// fill appends others events for 1,000 other users and channels, with the
// user "me"'s 10 events spread among them, in pipelined batches of 1,000.
// It returns a cursor from before all of them.
func fill(b *testing.B, s *Stream, others int) bridge.Cursor {
	b.Helper()
	start := time.Now()
	since := appendOrFail(b, s, []*bridge.Event{{ID: "start", Type: "t", Users: []string{"nobody"}}})[0].Cursor
	const batch = 1000
	every := others / 10
	g, ctx := errgroup.WithContext(b.Context())
	g.SetLimit(4)
	for first := 0; first < others; first += batch {
		g.Go(func() error {
			evs := make([]*bridge.Event, 0, batch+1)
			for i := first; i < min(first+batch, others); i++ {
				if i%every == every/2 {
					evs = append(evs, &bridge.Event{ID: "me." + strconv.Itoa(i), Type: "t", Users: []string{"me"}, Data: []byte(`{"n":1}`)})
				}
				u := strconv.Itoa(i % 1000)
				ev := &bridge.Event{ID: "o." + strconv.Itoa(i), Type: "t", Users: []string{"u" + u}, Data: []byte(`{"balance":"10.00"}`)}
				if i%2 == 1 {
					ev.Users, ev.Channel = nil, "ch"+u
				}
				evs = append(evs, ev)
			}
			_, err := s.Append(ctx, evs)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("fill: %v", err)
	}
	b.Logf("appended %d events in %v", others+11, time.Since(start).Round(time.Millisecond))
	return since
}

func appendOrFail(b *testing.B, s *Stream, evs []*bridge.Event) []bridge.AppendResult {
	res, err := s.Append(b.Context(), evs)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func usedMemory(info string) string {
	const key = "used_memory_human:"
	for i := 0; i+len(key) < len(info); i++ {
		if info[i:i+len(key)] == key {
			j := i + len(key)
			for j < len(info) && info[j] != '\r' && info[j] != '\n' {
				j++
			}
			return "used_memory " + info[i+len(key):j]
		}
	}
	return "used_memory unknown"
}

// BenchmarkAppend measures Append's throughput and the Redis CPU it costs
// per event, with events shaped like those of hookwire-bench's ingest load
// (one user among 1,000, a small JSON body). Appends run from
// 4*GOMAXPROCS goroutines. redis-µs/event is the server's used_cpu_user +
// used_cpu_sys (INFO cpu: every thread, network I/O included) over the
// run, divided by the events; cmd-µs/event is the time INFO commandstats
// charges to EVALSHA and EVAL (the scripts and what they call; wall time,
// so it exceeds the CPU time when the server is preempted). "trimming"
// runs with a 1s HistoryTTL, so that the MINID trims remove entries and
// the w bookkeeping finds the oldest entry due.
func BenchmarkAppend(b *testing.B) {
	for _, tt := range []struct {
		name    string
		batch   int
		history time.Duration
	}{
		{"single", 1, 0},
		{"single/trimming", 1, time.Second},
		{"batch=100", 100, 0},
		{"batch=100/trimming", 100, time.Second},
		{"batch=1000", 1000, 0},
	} {
		b.Run(tt.name, func(b *testing.B) {
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			s := New(rdb, Options{HistoryTTL: tt.history})
			// Load the script and create the epoch before measuring.
			appendOrFail(b, s, []*bridge.Event{benchEvent("warm", 0)})
			var seq atomic.Int64
			before := redisCPU(b, rdb)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				evs := make([]*bridge.Event, tt.batch)
				for pb.Next() {
					first := seq.Add(int64(tt.batch)) - int64(tt.batch)
					for i := range evs {
						evs[i] = benchEvent("", first+int64(i))
					}
					if _, err := s.Append(ctx, evs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			after := redisCPU(b, rdb)
			events := float64(seq.Load())
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((after.cpu-before.cpu)/events, "redis-µs/event")
			b.ReportMetric((after.cmd-before.cmd)/events, "cmd-µs/event")
		})
	}
}

func benchEvent(id string, seq int64) *bridge.Event {
	return &bridge.Event{
		ID:    id, // "": Append assigns one
		Type:  "bench.ingest",
		Users: []string{"ingest-" + strconv.FormatInt(seq%1000, 10)},
		Data:  []byte(`{"p":1,"s":` + strconv.FormatInt(seq, 10) + `}`),
	}
}

// redisUsage is what INFO reports of the server's CPU, in µs.
type redisUsage struct{ cpu, cmd float64 }

// redisCPU reads used_cpu_user + used_cpu_sys (INFO cpu) and the sum of
// usec of EVALSHA and EVAL in INFO commandstats (which includes the
// commands the scripts call: those are also counted under their own names).
func redisCPU(b *testing.B, rdb *redis.Client) redisUsage {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var u redisUsage
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO %s: %v", line, err)
			}
			u.cpu += f * 1e6
		case k == "cmdstat_evalsha" || k == "cmdstat_eval":
			for field := range strings.SplitSeq(v, ",") {
				if n, ok := strings.CutPrefix(field, "usec="); ok {
					f, err := strconv.ParseFloat(n, 64)
					if err != nil {
						b.Fatalf("INFO %s: %v", line, err)
					}
					u.cmd += f
				}
			}
		}
	}
	return u
}

// BenchmarkMemoryPerNewUser measures Redis memory per event to a user not
// seen in the last hour (issue 12): events with server-generated ids, each
// to a user with no index yet, shaped like a balance update, appended in
// batches of 100 over runs of 1,000 and 100,000 users. bytes/event is the
// growth of INFO memory's used_memory divided by the events: the stream
// entry, the user's index (a list with one member) and its expiry. The
// last case is active users: 200 events to each of 1,000 users within the
// hour, so each index holds 200 entries.
func BenchmarkMemoryPerNewUser(b *testing.B) {
	for _, tt := range []struct{ users, per int }{{1000, 1}, {100_000, 1}, {1000, 200}} {
		b.Run(fmt.Sprintf("users=%d/events_each=%d", tt.users, tt.per), func(b *testing.B) {
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			s := New(rdb, Options{})
			appendOrFail(b, s, []*bridge.Event{{Type: "warm", Users: []string{"warm"}}})
			before := usedMemoryBytes(b, rdb)
			events := tt.users * tt.per
			for first := 0; first < events; first += 100 {
				evs := make([]*bridge.Event, 0, 100)
				for i := first; i < min(first+100, events); i++ {
					evs = append(evs, &bridge.Event{Type: "balance.updated", Users: []string{"user-" + strconv.Itoa(i%tt.users)}, Data: []byte(`{"balance":"10.00"}`)})
				}
				appendOrFail(b, s, evs)
			}
			after := usedMemoryBytes(b, rdb)
			keys := rdb.DBSize(b.Context()).Val()
			b.Logf("%d events to %d users: used_memory +%d bytes, %.0f bytes/event, %d keys", events, tt.users, after-before, float64(after-before)/float64(events), keys)
			for b.Loop() {
			}
		})
	}
}

func usedMemoryBytes(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info := rdb.Info(context.Background(), "memory").Val()
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// BenchmarkReaderSkip measures what a replica's reader spends on an event
// that matches none of its connections: the XREAD of the entry (reply
// parsing), decoding it, the partition merge (vector cursors, with
// partitions=16) and the hub's routing, which finds no subscriber. The
// hub holds 10,000 connections of other users. cpu-µs/event is this
// process's CPU time (getrusage, user+sys) per event read; redis-µs/event
// is the Redis CPU time per entry read (one replica's reads).
func BenchmarkReaderSkip(b *testing.B) {
	for _, parts := range []int{1, 16} {
		b.Run("partitions="+strconv.Itoa(parts), func(b *testing.B) {
			srv := redistest.Start(b)
			rdb := srv.Client(b)
			s := New(rdb, Options{Partitions: parts})
			const events = 20_000
			for first := 0; first < events; first += 500 {
				evs := make([]*bridge.Event, 0, 500)
				for i := first; i < first+500; i++ {
					evs = append(evs, &bridge.Event{Type: "balance.updated", Users: []string{"other-" + strconv.Itoa(i)}, Data: []byte(`{"balance":"10.00"}`)})
				}
				appendOrFail(b, s, evs)
			}
			hub := bridge.NewHub(nil, bridge.HubOptions{})
			for i := range 10_000 {
				if _, err := hub.Subscribe(b.Context(), bridge.SubscribeRequest{Sink: skipSink{}, User: "conn-" + strconv.Itoa(i)}); err != nil {
					b.Fatal(err)
				}
			}
			ctx := b.Context()
			m := &merger{s: s, fn: func(bt bridge.Batch) { hub.Publish(ctx, bt) }, pos: make([]bridge.PartPos, parts)}
			tails := make([]*tail, parts)
			for i, p := range s.parts {
				tails[i] = &tail{s: s, p: p, emit: func(bt bridge.Batch, epoch string) { m.publish(p.n, bt, epoch) }}
				tails[i].epoch, _, _ = s.head(ctx, p)
			}
			read := 0
			cpu0, redis0 := processCPU(), redisCPU(b, rdb).cpu
			for b.Loop() {
				for _, t := range tails {
					t.last = "0-0"
					for {
						res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{t.p.events, t.last}, Count: DefaultReadCount, Block: -1}).Result()
						if errors.Is(err, redis.Nil) || (err == nil && len(res[0].Messages) == 0) {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if err := t.deliver(ctx, res[0].Messages); err != nil {
							b.Fatal(err)
						}
						read += len(res[0].Messages)
					}
				}
			}
			cpu1, redis1 := processCPU(), redisCPU(b, rdb).cpu
			b.ReportMetric(float64(cpu1-cpu0)/float64(read), "cpu-µs/event")
			b.ReportMetric((redis1-redis0)/float64(read), "redis-µs/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(read), "ns/event")
		})
	}
}

type skipSink struct{}

func (skipSink) Send(d bridge.Delivery)                              { d.Done(nil) }
func (skipSink) SendWait(_ context.Context, d bridge.Delivery) error { d.Done(nil); return nil }
func (skipSink) Reset(string)                                        {}
func (skipSink) Overflow()                                           {}

// processCPU returns this process's user+system CPU time in µs.
func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// BenchmarkSkipDecodeRoute is BenchmarkReaderSkip without Redis: entries
// as go-redis returns them, decoded, merged (partitions=16) and routed to
// a hub of 10,000 connections of other users. It is the part of the skip
// path this code owns; the rest is the XREAD and go-redis' reply parsing.
func BenchmarkSkipDecodeRoute(b *testing.B) {
	for _, parts := range []int{1, 16} {
		b.Run("partitions="+strconv.Itoa(parts), func(b *testing.B) {
			s := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Options{Partitions: parts})
			hub := bridge.NewHub(nil, bridge.HubOptions{})
			for i := range 10_000 {
				if _, err := hub.Subscribe(b.Context(), bridge.SubscribeRequest{Sink: skipSink{}, User: "conn-" + strconv.Itoa(i)}); err != nil {
					b.Fatal(err)
				}
			}
			ctx := b.Context()
			m := &merger{s: s, fn: func(bt bridge.Batch) { hub.Publish(ctx, bt) }, pos: make([]bridge.PartPos, parts)}
			t := &tail{s: s, p: s.parts[0], epoch: "k3j2a9qq1z", emit: func(bt bridge.Batch, epoch string) { m.publish(0, bt, epoch) }}
			msgs := make([]redis.XMessage, 500)
			for i := range msgs {
				msgs[i] = redis.XMessage{ID: "1796226986153-" + strconv.Itoa(i), Values: map[string]any{
					"e": "k3j2a9qq1z", "i": "evt_ABCDEFGHIJKLMNOPQRSTUVWXYZ", "t": "balance.updated",
					"u": "other-" + strconv.Itoa(i), "d": `{"balance":"10.00"}`,
				}}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := t.deliver(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
		})
	}
}

// BenchmarkAppendCluster is BenchmarkAppend's batch=100 on one Redis (one
// partition) against a 3-primary Redis Cluster on this machine (16
// partitions): throughput, and Redis CPU per event summed over the
// nodes. A batch of 100 events to 100 users spreads over the partitions,
// one script call per partition touched.
func BenchmarkAppendCluster(b *testing.B) {
	for _, tt := range []struct {
		name    string
		cluster bool
		parts   int
	}{{"single", false, 1}, {"cluster=3/partitions=16", true, 16}, {"cluster=3/partitions=3", true, 3}} {
		b.Run(tt.name, func(b *testing.B) {
			var rdb redis.UniversalClient
			var nodes []*redis.Client
			parts := 1
			if tt.cluster {
				cl := redistest.StartCluster(b, 3, 0)
				rdb = cl.Client(b)
				for _, n := range cl.Nodes {
					nodes = append(nodes, n.Client(b))
				}
				parts = tt.parts
			} else {
				srv := redistest.Start(b)
				c := srv.Client(b)
				rdb, nodes = c, []*redis.Client{c}
			}
			s := New(rdb, Options{Partitions: parts})
			appendOrFail(b, s, []*bridge.Event{benchEvent("warm", 0)})
			cpu := func() float64 {
				var sum float64
				for _, n := range nodes {
					sum += redisCPU(b, n).cpu
				}
				return sum
			}
			var seq atomic.Int64
			before := cpu()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				evs := make([]*bridge.Event, 100)
				for pb.Next() {
					first := seq.Add(100) - 100
					for i := range evs {
						evs[i] = benchEvent("", first+int64(i))
					}
					if _, err := s.Append(ctx, evs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			events := float64(seq.Load())
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((cpu()-before)/events, "redis-µs/event")
		})
	}
}
