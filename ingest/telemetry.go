package ingest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/problem"
)

// telemetry is the ingest handler's tracer and instruments.
type telemetry struct {
	tracing     bool // a TracerProvider was given: make send spans
	tracer      trace.Tracer
	propagator  propagation.TextMapPropagator
	destination string
	accepted    metric.Int64Counter
	rejected    metric.Int64Counter
	authFails   metric.Int64Counter
	duration    metric.Float64Histogram
	observed    *observeSets
}

func newTelemetry(opts Options) telemetry {
	tp, mp, prop := opts.TracerProvider, opts.MeterProvider, opts.Propagator
	tracing := tp != nil
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	dest := opts.Destination
	if dest == "" {
		dest = "hookwire"
	}
	m := mp.Meter("github.com/hookwire/hookwire/ingest")
	t := telemetry{observed: &observeSets{}, tracing: tracing, tracer: tp.Tracer("github.com/hookwire/hookwire/ingest"), propagator: prop, destination: dest}
	// Errors only come from invalid names or options, fixed here.
	t.accepted, _ = m.Int64Counter("hookwire.events.accepted", metric.WithDescription("Events accepted (202), and duplicates answered 200 (duplicate=true)."))
	t.rejected, _ = m.Int64Counter("hookwire.events.rejected", metric.WithDescription("Events or requests refused, by reason (the problem type)."))
	t.authFails, _ = m.Int64Counter("hookwire.auth.failures", metric.WithDescription("Rejected credentials, by endpoint and reason."))
	t.duration, _ = m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of ingest requests."),
		metric.WithExplicitBucketBoundaries(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
	return t
}

// startSend starts the PRODUCER "send" span of each event's append and
// stores its context in the event, so that the stream entry carries it and
// every replica's "process" span joins the same trace.
func (t telemetry) startSend(ctx context.Context, evs []*bridge.Event) []trace.Span {
	if !t.tracing {
		return nil
	}
	spans := make([]trace.Span, len(evs))
	for i, ev := range evs {
		sctx, span := t.tracer.Start(ctx, "send "+t.destination,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				semconv.MessagingSystemKey.String("redis"),
				semconv.MessagingOperationName("send"),
				semconv.MessagingOperationTypeSend,
				semconv.MessagingDestinationName(t.destination),
				semconv.MessagingMessageID(ev.ID),
				attribute.String("hookwire.event.type", ev.Type),
			))
		spans[i] = span
		if span.SpanContext().IsValid() {
			carrier := propagation.MapCarrier{}
			t.propagator.Inject(sctx, carrier)
			ev.Trace = carrier
		}
	}
	return spans
}

// endSend ends the send spans with the append's outcome and counts the
// accepted events.
func (t telemetry) endSend(ctx context.Context, spans []trace.Span, res []bridge.AppendResult, err error) {
	if err == nil {
		dups := 0
		for _, r := range res {
			if r.Duplicate {
				dups++
			}
		}
		if n := len(res) - dups; n > 0 {
			t.accepted.Add(ctx, int64(n), acceptedFresh...)
		}
		if dups > 0 {
			t.accepted.Add(ctx, int64(dups), acceptedDuplicate...)
		}
	}
	for i, span := range spans {
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, "append failed")
		case i < len(res):
			span.SetAttributes(attribute.String("hookwire.cursor", res[i].Cursor.String()), attribute.Bool("hookwire.duplicate", res[i].Duplicate))
		}
		span.End()
	}
}

// reject counts a refused request (or batch item) by its problem type.
func (t telemetry) reject(ctx context.Context, p problem.Details) {
	reason := strings.TrimPrefix(p.Type, "https://hookwire.dev/problems/")
	t.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	if p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden {
		t.authFails.Add(ctx, 1, metric.WithAttributes(attribute.String("endpoint", "ingest"), attribute.String("reason", reason)))
	}
}

// The attribute sets of the counts made for every request, built once: an
// attribute set built per call costs a few allocations each time.
var (
	acceptedFresh     = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.Bool("duplicate", false)))}
	acceptedDuplicate = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.Bool("duplicate", true)))}
)

// observeKey is the attributes of one request duration.
type observeKey struct {
	method, route string
	status        int
}

// observeSets keeps the attribute set of each method, route and status
// seen: a few dozen at most (two routes, the statuses they answer).
type observeSets struct {
	mu   sync.RWMutex
	sets map[observeKey][]metric.RecordOption
}

func (o *observeSets) get(k observeKey) []metric.RecordOption {
	o.mu.RLock()
	opts, ok := o.sets[k]
	o.mu.RUnlock()
	if ok {
		return opts
	}
	opts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.HTTPRoute(k.route),
		semconv.HTTPResponseStatusCode(k.status),
	))}
	o.mu.Lock()
	if o.sets == nil {
		o.sets = make(map[observeKey][]metric.RecordOption)
	}
	o.sets[k] = opts
	o.mu.Unlock()
	return opts
}

// observe records one ingest request's duration, with the semantic
// convention's attributes.
func (t telemetry) observe(ctx context.Context, method, route string, status int, d time.Duration) {
	t.duration.Record(ctx, d.Seconds(), t.observed.get(observeKey{method, route, status})...)
}
