package main

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// observeLag registers the stream read lag gauges: how far this replica's
// reader is behind the stream, in entries and in seconds.
func observeLag(mp metric.MeterProvider, lag func(context.Context) (int64, time.Duration, error)) error {
	m := mp.Meter("github.com/hookwire/hookwire")
	entries, err := m.Int64ObservableGauge("hookwire.stream.lag.entries",
		metric.WithDescription("Entries appended to the stream that this replica has not read yet (counted up to 1000)."))
	if err != nil {
		return err
	}
	age, err := m.Float64ObservableGauge("hookwire.stream.lag.seconds", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest stream entry this replica has not read yet; 0 when caught up."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		n, d, err := lag(ctx)
		if err != nil {
			return nil // the broker is down: /readyz says so
		}
		o.ObserveInt64(entries, n)
		o.ObserveFloat64(age, d.Seconds())
		return nil
	}, entries, age)
	return err
}
