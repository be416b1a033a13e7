package redisstream

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookwire/hookwire/bridge"
)

// roundTimeout bounds a shared round trip, which no single caller's
// context governs.
const roundTimeout = 10 * time.Second

// group merges concurrent Appends into shared round trips (group commit).
// An Append that finds no round trip in flight runs at once, alone, under
// its own context: a lone publisher waits for nothing. Appends that arrive
// while one is in flight queue, and the next round trip carries all of
// them, in one script call per chunk of up to 200 events. Under load, N
// concurrent single-event POSTs then cost Redis one script call and the
// server one write and one read, not N of each.
//
// No goroutine is started: the caller whose round trip ends hands the
// round to the first queued caller (the leader), which carries every
// queued caller's events on its own goroutine and wakes each with its
// results. Handing over costs one wake-up, which that caller needed
// anyway to get its answer.
//
// Events of different callers may share a chunk, so the dedupe check still
// sees them in order: of two callers posting the same id at once, one gets
// the append and the other the duplicate, as with two round trips.
type group struct {
	mu      sync.Mutex
	busy    bool // a round trip is in flight or handed to waiting[0]
	waiting []*groupCall
}

// groupCall is one queued Append.
type groupCall struct {
	// span is the caller's trace span: the Redis span of a round this
	// call leads nests under it.
	span trace.SpanContext
	evs  []*bridge.Event
	res  []bridge.AppendResult
	err  error
	// lead is set, under group.mu, when the call is handed the next
	// round; done is then closed without res or err.
	lead bool
	done chan struct{}
}

// appendFunc appends events in one round trip; errs[i] is set for each
// event that failed (its partition was unavailable).
type appendFunc func(ctx context.Context, evs []*bridge.Event) (res []bridge.AppendResult, errs []error)

// firstErr returns the first error of errs, or nil.
func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *group) append(ctx context.Context, evs []*bridge.Event, fn appendFunc) ([]bridge.AppendResult, error) {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		res, errs := fn(ctx, evs)
		g.handOver()
		if err := firstErr(errs); err != nil {
			return nil, err
		}
		return res, nil
	}
	c := &groupCall{span: trace.SpanContextFromContext(ctx), evs: evs, done: make(chan struct{})}
	g.waiting = append(g.waiting, c)
	g.mu.Unlock()
	select {
	case <-c.done:
		if !c.lead {
			return c.res, c.err
		}
		if ctx.Err() == nil {
			// Once leading, this caller waits for its round trip
			// (bounded by roundTimeout) even if it gives up.
			g.lead(fn)
			return c.res, c.err
		}
		g.leave(c)
	case <-ctx.Done():
		g.leave(c)
	}
	// As when a caller gives up on a round trip in flight: the events
	// may still be appended, and a retry with the same ids is answered
	// as a duplicate.
	return nil, unavailable("append", ctx.Err())
}

// handOver ends a round: the first queued call leads the next one, or the
// group goes idle when none is queued.
func (g *group) handOver() {
	g.mu.Lock()
	if len(g.waiting) == 0 {
		g.busy = false
		g.mu.Unlock()
		return
	}
	c := g.waiting[0]
	c.lead = true
	g.mu.Unlock()
	close(c.done)
}

// leave takes a call whose caller gave up out of the queue; if the next
// round was handed to it, it goes to the next call in the queue. A call no
// longer queued is in a round trip in flight, which answers nobody now.
func (g *group) leave(c *groupCall) {
	g.mu.Lock()
	i := slices.Index(g.waiting, c)
	if i < 0 {
		g.mu.Unlock()
		return
	}
	g.waiting = slices.Delete(g.waiting, i, i+1)
	if !c.lead {
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.handOver()
}

// lead makes the round handed to this caller: the events of every queued
// call (this one first), in one round trip, then hands the next round on
// and answers each call, this one last (it reads its own res and err).
func (g *group) lead(fn appendFunc) {
	g.mu.Lock()
	calls := g.waiting
	g.waiting = nil
	g.mu.Unlock()
	// The round is the leader's, under its trace span, but cancelling
	// the leader's context must not fail the others: a context of its
	// own, bounded by roundTimeout.
	ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), calls[0].span), roundTimeout)
	defer cancel()
	n := 0
	for _, c := range calls {
		n += len(c.evs)
	}
	evs := make([]*bridge.Event, 0, n)
	for _, c := range calls {
		evs = append(evs, c.evs...)
	}
	res, errs := fn(ctx, evs)
	g.handOver()
	// A call fails when one of its events did: the others' events may
	// be in partitions that are up.
	for i, c := range calls {
		if err := firstErr(errs[:len(c.evs)]); err != nil {
			c.err = err
		} else {
			c.res = slices.Clip(res[:len(c.evs)])
		}
		res, errs = res[len(c.evs):], errs[len(c.evs):]
		if i > 0 {
			close(c.done)
		}
	}
}
