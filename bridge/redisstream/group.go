package redisstream

import (
	"context"
	"slices"
	"sync"
	"time"

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
// Events of different callers may share a chunk, so the dedupe check still
// sees them in order: of two callers posting the same id at once, one gets
// the append and the other the duplicate, as with two round trips.
type group struct {
	mu      sync.Mutex
	busy    bool // a round trip is in flight
	waiting []*groupCall
}

// groupCall is one queued Append.
type groupCall struct {
	ctx  context.Context
	evs  []*bridge.Event
	res  []bridge.AppendResult
	err  error
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
	if g.busy {
		c := &groupCall{ctx: ctx, evs: evs, done: make(chan struct{})}
		g.waiting = append(g.waiting, c)
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			// As when a caller gives up on a round trip in flight:
			// the events may still be appended, and a retry with
			// the same ids is answered as a duplicate.
			return nil, unavailable("append", ctx.Err())
		}
	}
	g.busy = true
	g.mu.Unlock()
	res, errs := fn(ctx, evs)
	err := firstErr(errs)
	if err != nil {
		res = nil
	}
	// Whoever queued meanwhile goes in the next round trip, on a
	// goroutine of its own so that this caller gets its answer now.
	if next := g.next(); next != nil {
		go g.run(next, fn)
	}
	return res, err
}

// next takes the queued calls, or marks the group idle when there are none.
func (g *group) next() []*groupCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	next := g.waiting
	g.waiting = nil
	if len(next) == 0 {
		g.busy = false
	}
	return next
}

// run makes shared round trips until nothing is queued.
func (g *group) run(calls []*groupCall, fn appendFunc) {
	for calls != nil {
		g.round(calls, fn)
		calls = g.next()
	}
}

// round appends the events of calls in one round trip and answers each.
func (g *group) round(calls []*groupCall, fn appendFunc) {
	// The first caller's context carries the trace the Redis span
	// nests under; cancelling it must not fail the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(calls[0].ctx), roundTimeout)
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
	// A call fails when one of its events did: the others' events may
	// be in partitions that are up.
	for _, c := range calls {
		if err := firstErr(errs[:len(c.evs)]); err != nil {
			c.err = err
		} else {
			c.res = slices.Clip(res[:len(c.evs)])
		}
		res, errs = res[len(c.evs):], errs[len(c.evs):]
		close(c.done)
	}
}
