// Package otel sets up hookwire's telemetry: the tracer provider configured
// by the standard OTEL_* variables, the meter provider behind /metrics (and
// OTLP when configured), trace context propagation, trace ids on log lines
// and the Redis instrumentation. It is the only package that imports the
// OpenTelemetry SDK and exporters, and it imports no other hookwire package.
//
// Upstream's API package is also named otel: keep its imports in this
// package, so that no file needs both.
package otel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	promexp "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Options configure Setup.
type Options struct {
	// ServiceVersion is reported as service.version.
	ServiceVersion string
	// Getenv reads the OTEL_* variables (default os.Getenv); tests pass
	// their own.
	Getenv func(string) string
}

// Telemetry holds the providers of one process.
type Telemetry struct {
	registry   *prometheus.Registry
	meters     *sdkmetric.MeterProvider
	tracer     *sdktrace.TracerProvider // nil when traces are off
	propagator propagation.TextMapPropagator
	instanceID string
}

// Setup builds the providers from the OTEL_* variables. Traces are off
// unless an exporter is configured (OTEL_TRACES_EXPORTER other than
// "none", or an OTLP endpoint); the sampler, batch processor, resource and
// exporter settings are the SDK's, from the same variables. Metrics are
// always served for Prometheus at MetricsHandler, and also exported when
// OTEL_METRICS_EXPORTER names an exporter. Shutdown releases them.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	t := &Telemetry{
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		instanceID: strings.ToLower(rand.Text()[:12]),
	}
	attrs := []resource.Option{
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("hookwire"), semconv.ServiceInstanceID(t.instanceID)),
	}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(opts.ServiceVersion)))
	}
	// From the environment last, so OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES win over the defaults above.
	attrs = append(attrs, resource.WithFromEnv())
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	if id, ok := res.Set().Value(semconv.ServiceInstanceIDKey); ok {
		t.instanceID = id.AsString()
	}

	reg := prometheus.NewRegistry()
	prom, err := promexp.New(promexp.WithRegisterer(reg), promexp.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	readers := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom), sdkmetric.WithView(latencyView)}
	if exp := getenv("OTEL_METRICS_EXPORTER"); exp != "" && exp != "none" && exp != "prometheus" {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_METRICS_EXPORTER: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(r))
	}
	t.registry = reg
	t.meters = sdkmetric.NewMeterProvider(readers...)

	if tracesOn(getenv) {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %w", err)
		}
		t.tracer = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
	}
	return t, nil
}

// latencyView gives the delivery latency histogram buckets fit for
// milliseconds to seconds.
var latencyView = sdkmetric.NewView(
	sdkmetric.Instrument{Name: "hookwire.delivery.latency"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
		Boundaries: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}},
)

func tracesOn(getenv func(string) string) bool {
	switch exp := getenv("OTEL_TRACES_EXPORTER"); exp {
	case "none":
		return false
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	return true
}

// TracesEnabled reports whether spans are exported.
func (t *Telemetry) TracesEnabled() bool { return t.tracer != nil }

// TracerProvider returns the tracer provider: a no-op one when traces are
// off, so instrumented code costs next to nothing.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t.tracer == nil {
		return noop.NewTracerProvider()
	}
	return t.tracer
}

// MeterProvider returns the meter provider.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meters }

// Meter returns the meter hookwire's instruments are created from.
func (t *Telemetry) Meter() metric.Meter { return t.meters.Meter("github.com/hookwire/hookwire") }

// Propagator returns the W3C trace context and baggage propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// InstanceID returns this replica's service.instance.id.
func (t *Telemetry) InstanceID() string { return t.instanceID }

// MetricsHandler serves the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.tracer != nil {
		errs = append(errs, t.tracer.Shutdown(ctx))
	}
	errs = append(errs, t.meters.Shutdown(ctx))
	return errors.Join(errs...)
}
