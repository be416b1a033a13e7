package sources

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// telemetry is the per-source counters.
type telemetry struct {
	received   metric.Int64Counter
	rejected   metric.Int64Counter
	ignored    metric.Int64Counter
	events     metric.Int64Counter
	ruleErrors metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) *telemetry {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter("github.com/hookwire/hookwire/sources")
	t := &telemetry{}
	// Errors only come from invalid names or options, fixed here.
	t.received, _ = m.Int64Counter("hookwire.source.webhooks", metric.WithDescription("Webhooks received by a source, verified or not."))
	t.rejected, _ = m.Int64Counter("hookwire.source.rejected", metric.WithDescription("Webhooks refused by a source, by reason (missing_signature, malformed_signature, stale_timestamp, bad_signature, malformed_body)."))
	t.ignored, _ = m.Int64Counter("hookwire.source.ignored", metric.WithDescription("Verified webhooks for which no rule made an event (answered 200 ignored)."))
	t.events, _ = m.Int64Counter("hookwire.source.events", metric.WithDescription("Events made by a source's rules."))
	t.ruleErrors, _ = m.Int64Counter("hookwire.source.rule_errors", metric.WithDescription("Rules that failed on a payload and were skipped, by rule."))
	return t
}

func (t *telemetry) src(name string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("source", name)))
}

func (t *telemetry) srcReason(name, reason string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("source", name), attribute.String("reason", reason)))
}

func (t *telemetry) srcRule(name, rule string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("source", name), attribute.String("rule", rule)))
}
