package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

// nopSink takes events as a connection's queue would, without a socket.
type nopSink struct{ n int }

func (s *nopSink) Send(d bridge.Delivery)                              { s.n++; d.Done(nil) }
func (s *nopSink) SendWait(_ context.Context, d bridge.Delivery) error { s.Send(d); return nil }
func (s *nopSink) Reset(string)                                        {}
func (s *nopSink) Overflow()                                           {}

func benchEvent(users []string, channel string) *bridge.Event {
	return &bridge.Event{
		ID: "evt_01JBENCH", Type: "balance.updated", Users: users, Channel: channel,
		Data:   json.RawMessage(`{"balance":"10.00","currency":"EUR"}`),
		Cursor: bridge.Cursor{Epoch: "k3j2a9", MS: 1732233000000, Seq: 7}, Time: time.Now(),
	}
}

// BenchmarkFrame: encoding one event's frame (done once per event per
// replica, however many connections get it).
func BenchmarkFrame(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ev := benchEvent([]string{"42"}, "")
		_ = ev.Frame()
	}
}

// BenchmarkRoutePersonal: one event to one user among many connections.
func BenchmarkRoutePersonal(b *testing.B) {
	for _, conns := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			h := bridge.NewHub(nil, bridge.HubOptions{})
			for i := range conns {
				h.Subscribe(context.Background(), bridge.SubscribeRequest{Sink: &nopSink{}, User: fmt.Sprint(i)})
			}
			evs := make([]*bridge.Event, 1024)
			for i := range evs {
				evs[i] = benchEvent([]string{fmt.Sprint(i * 7 % conns)}, "")
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				h.Publish(b.Context(), bridge.Batch{Events: evs[i%len(evs) : i%len(evs)+1]})
				i++
			}
		})
	}
}

// BenchmarkFanoutBroadcast: one channel event to every subscriber; reports
// deliveries per second of one core.
func BenchmarkFanoutBroadcast(b *testing.B) {
	for _, subs := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			h := bridge.NewHub(nil, bridge.HubOptions{})
			for i := range subs {
				h.Subscribe(context.Background(), bridge.SubscribeRequest{Sink: &nopSink{}, User: fmt.Sprint(i), Channels: []string{"prices.EURUSD"}})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Publish(b.Context(), bridge.Batch{Events: []*bridge.Event{benchEvent(nil, "prices.EURUSD")}})
			}
			b.ReportMetric(float64(subs)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
