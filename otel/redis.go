package otel

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// InstrumentRedis adds tracing and metrics to rdb. Redis spans are made
// only as children of a hookwire span (the append of an event, a replay),
// never as roots: the replicas' background reads would otherwise drown
// every trace viewer in spans of their own. The blocking XREAD is never
// traced.
func (t *Telemetry) InstrumentRedis(rdb redis.UniversalClient) error {
	if t.tracer != nil {
		if err := redisotel.InstrumentTracing(rdb,
			redisotel.WithTracerProvider(childOnly{tp: t.tracer}),
			redisotel.WithDBStatement(false), // commands carry event data
			redisotel.WithCommandFilter(func(cmd redis.Cmder) bool { return cmd.Name() == "xread" }),
		); err != nil {
			return fmt.Errorf("redis tracing: %w", err)
		}
	}
	if err := redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(t.meters)); err != nil {
		return fmt.Errorf("redis metrics: %w", err)
	}
	return nil
}

// childOnly is a TracerProvider whose tracers start spans only under a
// valid parent.
type childOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (c childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: c.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (c childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a no-op span
	}
	return c.t.Start(ctx, name, opts...)
}
