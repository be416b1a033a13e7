package subscribers

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/hookwire/hookwire/bridge"
)

// instruments are the Server's metrics, created once.
type instruments struct {
	// delivered counts event frames written; an observable counter
	// reports it, so a delivery costs one atomic add.
	delivered   atomic.Int64
	writeErrors metric.Int64Counter
	slowCloses  metric.Int64Counter
	latency     metric.Float64Histogram
	resumes     metric.Int64Counter
	resets      metric.Int64Counter
	authFails   metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) *instruments {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/hookwire/hookwire/subscribers")
	var i instruments
	// Errors only come from invalid names or options, fixed here.
	_, _ = m.Int64ObservableCounter("hookwire.deliveries", metric.WithDescription("Event frames written to WebSocket connections."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(i.delivered.Load())
			return nil
		}))
	i.writeErrors, _ = m.Int64Counter("hookwire.write_errors", metric.WithDescription("WebSocket writes that failed."))
	i.slowCloses, _ = m.Int64Counter("hookwire.slow_consumer_closes", metric.WithDescription("Connections closed with 1013 because their queue overflowed."))
	i.latency, _ = m.Float64Histogram("hookwire.delivery.latency", metric.WithUnit("s"),
		metric.WithDescription("From the broker's acceptance of an event to its frame written to a connection."))
	i.resumes, _ = m.Int64Counter("hookwire.resumes", metric.WithDescription("Connections that asked to resume with a since cursor."))
	i.resets, _ = m.Int64Counter("hookwire.resets", metric.WithDescription("reset frames sent to connections, by reason."))
	i.authFails, _ = m.Int64Counter("hookwire.auth.failures", metric.WithDescription("Rejected credentials, by endpoint and reason."))
	return &i
}

// bg is the context of the measurements taken on the delivery path (a
// write, a slow-consumer close, a reset), which carries none: a Sink's
// methods take no context, so that the fan-out passes nothing per delivery.
var bg = context.Background()

// latencyOf records one written event's delivery latency. Only live
// events count: a replayed one's age is how long its client was away.
func (i *instruments) latencyOf(d bridge.Delivery) {
	if d.Live() && !d.Event.Time.IsZero() {
		i.latency.Record(bg, time.Since(d.Event.Time).Seconds())
	}
}

func (i *instruments) authFailure(reason string) {
	i.authFails.Add(bg, 1, metric.WithAttributes(attribute.String("endpoint", "ws"), attribute.String("reason", reason)))
}

// ObserveConnections registers the open-connections gauge on mp.
func (s *Server) ObserveConnections(mp metric.MeterProvider) error {
	_, err := mp.Meter("github.com/hookwire/hookwire/subscribers").Int64ObservableGauge("hookwire.connections",
		metric.WithDescription("Open WebSocket connections."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(s.Count()))
			return nil
		}))
	return err
}
