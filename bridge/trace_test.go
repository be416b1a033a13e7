package bridge_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookwire/hookwire/bridge"
)

// doneSink calls Done like a connection's writer: ok for the first n, a
// failure for the rest.
type doneSink struct {
	sink
	fail bool
}

func (s *doneSink) Send(d bridge.Delivery) {
	s.sink.Send(d)
	if s.fail {
		d.Done(errors.New("socket write failed"))
	} else {
		d.Done(nil)
	}
}

func TestProcessSpanJoinsTheTraceOfTheAppend(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prop := propagation.TraceContext{}
	h := bridge.NewHub(&history{}, bridge.HubOptions{TracerProvider: tp, Propagator: prop, Destination: "hw"})
	ok1, ok2, bad := &doneSink{}, &doneSink{}, &doneSink{fail: true}
	for _, s := range []*doneSink{ok1, ok2, bad} {
		if _, err := h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42"}); err != nil {
			t.Fatal(err)
		}
	}
	// The send span of the append, as ingest makes it.
	ctx, send := tp.Tracer("test").Start(context.Background(), "send hw", trace.WithSpanKind(trace.SpanKindProducer))
	carrier := propagation.MapCarrier{}
	prop.Inject(ctx, carrier)
	send.End()
	e := ev(1, []string{"42"}, "")
	e.Trace = carrier
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{e}})

	var process sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "process hw" {
			process = s
		}
	}
	if process == nil {
		t.Fatalf("no process span among %d ended spans", len(rec.Ended()))
	}
	if process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kind %v", process.SpanKind())
	}
	if process.Parent().SpanID() != send.SpanContext().SpanID() || process.SpanContext().TraceID() != send.SpanContext().TraceID() {
		t.Errorf("process span is not a child of the send span")
	}
	if len(process.Links()) != 1 || process.Links()[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("links %v, want one to the send span", process.Links())
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range process.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	want := map[attribute.Key]int64{"hookwire.connections.matched": 3, "hookwire.connections.written": 2, "hookwire.connections.failed": 1}
	for k, v := range want {
		if attrs[k].AsInt64() != v {
			t.Errorf("%s = %v, want %d", k, attrs[k], v)
		}
	}
	if attrs["messaging.message.id"].AsString() != "e1" || attrs["messaging.destination.name"].AsString() != "hw" {
		t.Errorf("messaging attributes %v", attrs)
	}
	if len(process.Events()) != 1 || process.Events()[0].Name != "socket write failed" {
		t.Errorf("span events %v, want the write failure", process.Events())
	}
}

// TestProcessSpanWaitsForTheLastWrite: the span ends only when every
// connection has written (or dropped) the event.
func TestProcessSpanWaitsForTheLastWrite(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := bridge.NewHub(&history{}, bridge.HubOptions{TracerProvider: tp})
	s := &sink{}
	h.Subscribe(t.Context(), bridge.SubscribeRequest{Sink: s, User: "42"})
	e := ev(1, []string{"42"}, "")
	h.Publish(t.Context(), bridge.Batch{Events: []*bridge.Event{e}})
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans ended before the write", n)
	}
	s.took[0].Done(nil)
	if n := len(rec.Ended()); n != 1 {
		t.Fatalf("%d spans ended after the write, want 1", n)
	}
}
