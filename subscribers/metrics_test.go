package subscribers_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/subscribers"
)

// latencyCount returns how many deliveries the latency histogram recorded.
func latencyCount(t *testing.T, r *sdkmetric.ManualReader) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "hookwire.delivery.latency" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				n += dp.Count
			}
		}
	}
	return n
}

// TestReplayedEventsAreNotLive: the delivery latency counts live
// deliveries only. A resume replays, from memstream's history, the very
// events the fan-out delivered live a moment before; they must not count
// (they did when "live" was a flag on the shared Event).
func TestReplayedEventsAreNotLive(t *testing.T) {
	r := sdkmetric.NewManualReader()
	e := newEnv(t, subscribers.Options{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)),
		// No head: a fresh connection replays nothing, so everything it
		// gets comes live.
		Head: func(context.Context) (bridge.Cursor, error) { return bridge.Cursor{}, nil },
	})
	live := e.mustDial("token=" + token("42"))
	start := e.publish(&bridge.Event{ID: "start", Type: "t", Users: []string{"43"}})[0].Cursor
	const n = 5
	for i := range n {
		e.publish(&bridge.Event{ID: string(rune('a' + i)), Type: "t", Users: []string{"42"}})
	}
	for range n {
		if f := read(t, live); f["type"] != "event" {
			t.Fatalf("live got %v", f)
		}
	}
	// A delivery is measured just after its write: the client may read
	// the frame first.
	deadline := time.Now().Add(5 * time.Second)
	for latencyCount(t, r) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := latencyCount(t, r); got != n {
		t.Fatalf("%d live deliveries recorded, want %d", got, n)
	}
	resumed := e.mustDial("token=" + token("42") + "&since=" + url.QueryEscape(start.String()))
	for range n {
		if f := read(t, resumed); f["type"] != "event" {
			t.Fatalf("resume got %v", f)
		}
	}
	time.Sleep(100 * time.Millisecond) // for a measurement that would follow the write
	if got := latencyCount(t, r); got != n {
		t.Errorf("%d deliveries recorded as live after a resume replayed %d, want %d", got, n, n)
	}
}
