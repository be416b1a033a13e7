package bridge

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes of hookwire's own.
const (
	attrCursor  = attribute.Key("hookwire.cursor")
	attrMatched = attribute.Key("hookwire.connections.matched")
	attrWritten = attribute.Key("hookwire.connections.written")
	attrFailed  = attribute.Key("hookwire.connections.failed")
)

// fanout follows one event's fan-out on this replica, so that its
// "process" span ends when the last matched connection has written (or
// dropped) the event, and so shows how long the slowest socket took. The
// Hub makes one per traced event and hands it, inside each Delivery, to
// the sinks; it is never stored in the Event.
type fanout struct {
	span    trace.Span
	pending atomic.Int32 // handoffs not yet done, plus one while routing
	matched atomic.Int32
	written atomic.Int32
	failed  atomic.Int32
}

// handoff counts one more sink that will call Done.
func (d *fanout) handoff() {
	d.matched.Add(1)
	d.pending.Add(1)
}

func (d *fanout) done(err error) {
	if err == nil {
		d.written.Add(1)
	} else {
		d.failed.Add(1)
		d.span.AddEvent(eventName(err), trace.WithAttributes(attribute.String("error.message", err.Error())))
	}
	d.release()
}

func (d *fanout) release() {
	if d.pending.Add(-1) != 0 {
		return
	}
	failed := d.failed.Load()
	d.span.SetAttributes(attrMatched.Int64(int64(d.matched.Load())), attrWritten.Int64(int64(d.written.Load())), attrFailed.Int64(int64(failed)))
	if failed > 0 {
		d.span.SetStatus(codes.Error, "some connections did not get the event")
	}
	d.span.End()
}

// Reasons a sink gives Done, to name span events. Sinks wrap them.
var (
	ErrSlowConsumer = errors.New("slow consumer closed")
	ErrConnClosed   = errors.New("connection closed")
)

func eventName(err error) string {
	switch {
	case errors.Is(err, ErrSlowConsumer):
		return "slow consumer closed"
	case errors.Is(err, ErrConnClosed):
		return "connection closed before the write"
	}
	return "socket write failed"
}

// startProcess starts the event's "process" span on this replica and
// returns the fanout that ends it, or nil when the span is not recorded: a
// CONSUMER span whose parent is the "send" span of the append, extracted
// from the stream entry, so that one trace holds the ingest request, the
// append and the fan-out of every replica. Per the messaging conventions,
// it also links to that creation context: a link is what survives when a
// sampler or a batch makes the parent unsuitable.
func (h *Hub) startProcess(ctx context.Context, ev *Event) *fanout {
	// The event's own trace is the parent, never one ctx may carry.
	ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	if len(ev.Trace) > 0 {
		ctx = h.propagator.Extract(ctx, propagation.MapCarrier(ev.Trace))
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("redis"),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(h.destination),
			semconv.MessagingMessageID(ev.ID),
			attrCursor.String(ev.Cursor.String()),
		),
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	_, span := h.tracer.Start(ctx, "process "+h.destination, opts...)
	if !span.IsRecording() {
		return nil
	}
	f := &fanout{span: span}
	f.pending.Store(1)
	return f
}

// endRouting drops the routing's own hold on the fan-out.
func (d *fanout) endRouting() {
	if d != nil {
		d.release()
	}
}
