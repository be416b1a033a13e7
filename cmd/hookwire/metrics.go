package main

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/hookwire/hookwire/subscribers"
)

// metrics are the process's instruments, created once in serve.
type metrics struct {
	meter      metric.Meter
	deliveries metric.Int64Counter
	writeErrs  metric.Int64Counter
	slowCloses metric.Int64Counter
}

func newMetrics(m metric.Meter) (*metrics, error) {
	d, err := m.Int64Counter("hookwire.deliveries", metric.WithDescription("Event and control frames written to WebSocket connections."))
	if err != nil {
		return nil, err
	}
	w, err := m.Int64Counter("hookwire.write_errors", metric.WithDescription("WebSocket writes that failed."))
	if err != nil {
		return nil, err
	}
	s, err := m.Int64Counter("hookwire.slow_consumer_closes", metric.WithDescription("Connections closed with 1013 because their queue overflowed."))
	if err != nil {
		return nil, err
	}
	return &metrics{meter: m, deliveries: d, writeErrs: w, slowCloses: s}, nil
}

func (m *metrics) subscribers() subscribers.Metrics {
	ctx := context.Background()
	return subscribers.Metrics{
		Delivered:   func() { m.deliveries.Add(ctx, 1) },
		WriteErrors: func() { m.writeErrs.Add(ctx, 1) },
		SlowCloses:  func() { m.slowCloses.Add(ctx, 1) },
	}
}

func (m *metrics) observeConnections(count func() int) {
	_, _ = m.meter.Int64ObservableGauge("hookwire.connections",
		metric.WithDescription("Open WebSocket connections."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(count()))
			return nil
		}))
}
