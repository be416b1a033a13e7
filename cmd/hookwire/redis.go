package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

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
