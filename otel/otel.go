// Package otel sets up hookwire's telemetry: the OpenTelemetry meter
// provider behind /metrics, and the tracer provider configured by the
// standard OTEL_* variables. It is the only package that imports the
// OpenTelemetry SDK and exporters, and it imports no other hookwire package.
package otel

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	promexp "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Telemetry holds the providers of one process.
type Telemetry struct {
	registry *prometheus.Registry
	meters   *sdkmetric.MeterProvider
}

// Setup builds the providers. Shutdown releases them.
func Setup(ctx context.Context) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	exp, err := promexp.New(promexp.WithRegisterer(reg), promexp.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return &Telemetry{registry: reg, meters: mp}, nil
}

// Meter returns the meter hookwire's instruments are created from.
func (t *Telemetry) Meter() metric.Meter { return t.meters.Meter("github.com/hookwire/hookwire") }

// MetricsHandler serves the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.meters.Shutdown(ctx))
}
