package redisstream

import (
	"strconv"
	"testing"
	"time"

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
