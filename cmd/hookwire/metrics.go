package main

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hookwire/hookwire/bridge/redisstream"
)

// observePartitionLag registers the stream read lag gauges, one series per
// partition (attribute partition): how far this replica's reader of each
// partition is behind it, in entries and in seconds. A partition that
// cannot be read reports nothing.
func observePartitionLag(mp metric.MeterProvider, rs *redisstream.Stream) error {
	m := mp.Meter("github.com/hookwire/hookwire")
	entries, err := m.Int64ObservableGauge("hookwire.stream.lag.entries",
		metric.WithDescription("Entries appended to a stream partition that this replica has not read yet (counted up to 1000)."))
	if err != nil {
		return err
	}
	age, err := m.Float64ObservableGauge("hookwire.stream.lag.seconds", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest entry of a stream partition this replica has not read yet; 0 when caught up."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		lags, _ := rs.PartitionLag(ctx)
		for _, l := range lags {
			if l.Err != nil {
				continue // that partition's node is down: /readyz and the logs say so
			}
			attrs := metric.WithAttributes(attribute.Int("partition", l.Partition))
			o.ObserveInt64(entries, l.Entries, attrs)
			o.ObserveFloat64(age, l.Age.Seconds(), attrs)
		}
		return nil
	}, entries, age)
	return err
}
