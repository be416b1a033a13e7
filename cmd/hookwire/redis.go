package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hookwire/hookwire/bridge/redisstream"
	"github.com/hookwire/hookwire/otel"
)

// openRedis opens the Redis broker of cfg: one Redis or a Redis Cluster,
// found out from HOOKWIRE_REDIS_URL itself, with HOOKWIRE_PARTITIONS
// partitions (default 1 on one Redis, 16 on a Cluster). It fails when the
// bridge already runs with another partition count. It logs the mode and
// registers the per-partition read lag gauges. The returned close is
// idempotent.
func openRedis(ctx context.Context, cfg config, tel *otel.Telemetry, logger *slog.Logger) (stream, func() error, error) {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rs, err := redisstream.Open(octx, cfg.RedisURL, redisstream.Options{
		Prefix: cfg.Stream, Partitions: cfg.Partitions, HistoryTTL: cfg.HistoryTTL, DedupeTTL: cfg.DedupeTTL,
		MinReplicas: cfg.RedisMinReplicas, Logger: logger,
	}, func(c redis.UniversalClient) error { return tel.InstrumentRedis(c) })
	if err != nil {
		return nil, nil, fmt.Errorf("HOOKWIRE_REDIS_URL: %w", err)
	}
	mode := "redis"
	if rs.Cluster() {
		mode = "redis-cluster"
	}
	logger.Info("broker connected", "broker", mode, "partitions", rs.Partitions(), "min_replicas", cfg.RedisMinReplicas)
	if err := observePartitionLag(tel.MeterProvider(), rs); err != nil {
		rs.Close()
		return nil, nil, err
	}
	return rs, rs.Close, nil
}

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
