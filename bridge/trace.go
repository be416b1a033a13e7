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

// delivery follows one event's fan-out on this replica, so that its
// "process" span ends when the last matched connection has written (or
// dropped) the event, and so shows how long the slowest socket took.
type delivery struct {
	span    trace.Span
	pending atomic.Int32 // handoffs not yet done, plus one while routing
	matched atomic.Int32
	written atomic.Int32
	failed  atomic.Int32
}

// handoff counts one more sink that will call Done.
func (d *delivery) handoff() {
	d.matched.Add(1)
	d.pending.Add(1)
}

func (d *delivery) done(err error) {
	if err == nil {
		d.written.Add(1)
	} else {
		d.failed.Add(1)
		d.span.AddEvent(eventName(err), trace.WithAttributes(attribute.String("error.message", err.Error())))
	}
	d.release()
}

func (d *delivery) release() {
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

// Done tells the event's fan-out that one sink finished with it: err is nil
// when its frame was written to the connection, else why it was not
// (written too late, connection closed, too slow). A Sink calls Done once
// for every event passed to Send or SendWait. It is cheap and safe for
// concurrent use.
func (ev *Event) Done(err error) {
	if d := ev.delivery; d != nil {
		d.done(err)
	}
}

// startProcess starts the event's "process" span on this replica: a
// CONSUMER span whose parent is the "send" span of the append, extracted
// from the stream entry, so that one trace holds the ingest request, the
// append and the fan-out of every replica. Per the messaging conventions,
// it also links to that creation context: a link is what survives when a
// sampler or a batch makes the parent unsuitable.
func (h *Hub) startProcess(ev *Event) {
	ctx := context.Background()
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
		return
	}
	d := &delivery{span: span}
	d.pending.Store(1)
	ev.delivery = d
}

// endRouting drops the routing's own hold on the event's delivery.
func (ev *Event) endRouting() {
	if d := ev.delivery; d != nil {
		d.release()
	}
}

// handoff counts one more sink that will call ev.Done.
func (ev *Event) handoff() {
	if d := ev.delivery; d != nil {
		d.handoff()
	}
}

// covered ends a held event's handoff without a write of its own: the
// connection's replay already sent it (or the client had it before it
// resumed), so for this connection it counts as written.
func (ev *Event) covered() {
	if d := ev.delivery; d != nil {
		d.done(nil)
	}
}
