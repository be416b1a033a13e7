package redisstream

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/bridge"
)

const (
	// backoffBase is the first retry delay after a failed read.
	backoffBase = 50 * time.Millisecond
	// warnEvery rate-limits Tail's warnings during an outage.
	warnEvery = 10 * time.Second
)

// Tail calls fn with every event appended after the call began, in cursor
// order, in batches of at most ReadCount, until ctx is done; see
// bridge.Stream. It reads with XREAD BLOCK ReadBlock from its own last
// entry ID, so it notices a cancelled ctx within about ReadBlock.
//
// With several partitions, each is read by its own goroutine with its own
// blocking read and backoff, so a partition whose node is down stalls no
// other; their batches are handed to fn one at a time (fn is never called
// concurrently), each partition's in order, and each event carries the
// vector cursor of everything handed to fn up to it. A Reset of one
// partition is a Reset batch for all.
//
// It rides out Redis outages: it logs a warning (at most one per 10s),
// backs off (exponential with full jitter, up to 2s) and continues from its
// last entry ID. After an error, when idle, and when an entry of another
// epoch arrives, it re-reads the epoch; if the broker lost its history
// (the epoch changed, or meta is gone), fn gets a Batch with Reset set and
// no events, and Tail re-reads the new epoch's stream from its start.
func (s *Stream) Tail(ctx context.Context, fn func(bridge.Batch)) error {
	tails := make([]*tail, len(s.parts))
	if len(s.parts) == 1 {
		tails[0] = &tail{s: s, p: s.parts[0], emit: func(b bridge.Batch, _ string) { fn(b) }, started: func(string, string) {}}
	} else {
		m := &merger{s: s, fn: fn, pos: make([]bridge.PartPos, len(s.parts))}
		for i, p := range s.parts {
			tails[i] = &tail{s: s, p: p,
				emit:    func(b bridge.Batch, epoch string) { m.publish(p.n, b, epoch) },
				started: func(epoch, last string) { m.start(p.n, epoch, last) },
			}
		}
	}
	if err := s.position(ctx, tails); err != nil {
		return err
	}
	// Positioned: the first batch, before any reader runs (bridge.Stream).
	fn(bridge.Batch{})
	if len(tails) == 1 {
		return s.tailPart(ctx, tails[0])
	}
	done := make(chan struct{}, len(tails))
	for _, t := range tails {
		go func() { _ = s.tailPart(ctx, t); done <- struct{}{} }()
	}
	for range tails {
		<-done
	}
	return ctx.Err()
}

// positionWait bounds how long Tail waits to position a partition whose
// node is down before its first batch.
const positionWait = 5 * time.Second

// position reads every partition's head at once, so that Tail's first
// batch means that every event appended after it is delivered. A
// partition that cannot be read within positionWait (its node is down:
// nothing can be appended to it then) is positioned by its reader as
// soon as it can, so one down node does not keep a replica from starting.
func (s *Stream) position(ctx context.Context, tails []*tail) error {
	pctx, cancel := context.WithTimeout(ctx, positionWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range tails {
		wg.Go(func() { _ = t.position(pctx) })
	}
	wg.Wait()
	return ctx.Err()
}

// merger serializes the partitions' readers into one sequence of batches
// for Tail's callback, and gives each event the vector cursor of every
// partition's position up to it: a client that processed the event has
// every event of this sequence before it, so a resume from the vector
// misses nothing in any partition.
type merger struct {
	s  *Stream
	fn func(bridge.Batch)

	mu  sync.Mutex
	pos []bridge.PartPos // per partition, the last event delivered
	vec *bridge.Vector   // of pos, nil when pos changed since
}

// start records partition p's head when its reader starts.
func (m *merger) start(p int, epoch, last string) {
	c, _ := bridge.ParseID(last)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos[p] = bridge.PartPos{Epoch: bridge.EpochSum(epoch), MS: c.MS, Seq: c.Seq}
	m.vec = nil
}

// publish hands partition p's batch of epoch to fn.
func (m *merger) publish(p int, b bridge.Batch, epoch string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := bridge.EpochSum(epoch)
	if b.Reset {
		m.pos[p] = bridge.PartPos{Epoch: sum}
		m.vec = nil
	}
	if len(b.Events) > 0 {
		if m.vec == nil {
			m.vec = bridge.NewVector(m.pos)
		}
		for _, ev := range b.Events {
			ev.Cursor = m.vec.At(p, ev.Cursor.MS, ev.Cursor.Seq)
		}
		last := b.Events[len(b.Events)-1].Cursor
		m.pos[p] = bridge.PartPos{Epoch: sum, MS: last.MS, Seq: last.Seq}
		m.vec = nil
		m.s.known.update(p, m.pos[p])
	}
	m.fn(b)
}

// tailPart reads one partition until ctx is done.
func (s *Stream) tailPart(ctx context.Context, t *tail) error {
	if !t.positioned {
		if err := t.position(ctx); err != nil {
			return err
		}
	}
	t.recovered(ctx)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.recheck {
			if err := t.checkEpoch(ctx); err != nil {
				if err := t.failed(ctx, err); err != nil {
					return err
				}
				continue
			}
		}
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{t.p.events, t.last},
			Count:   s.readCount,
			Block:   s.readBlock,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			// Idle: check that Redis did not lose its data while
			// the connection stayed up (FLUSHALL, meta deleted).
			t.recovered(ctx)
			t.recheck = true
			continue
		case err != nil:
			t.recheck = true
			if err := t.failed(ctx, err); err != nil {
				return err
			}
			continue
		}
		t.recovered(ctx)
		for _, st := range res {
			if err := t.deliver(ctx, st.Messages); err != nil {
				if err := t.failed(ctx, err); err != nil {
					return err
				}
				break
			}
		}
	}
}

// tail is the state of one Tail call.
type tail struct {
	s *Stream
	p *part
	// emit hands a batch of the partition's epoch on; started records
	// the partition's head when reading begins.
	emit    func(b bridge.Batch, epoch string)
	started func(epoch, last string)

	epoch      string // the epoch of the entries being read
	last       string // the last entry ID read
	recheck    bool   // re-read the epoch before the next XREAD
	positioned bool   // epoch and last hold the partition's head at the start

	attempt    int       // consecutive failures
	failing    bool      // a warning was logged and no recovery yet
	lastWarn   time.Time // when the last warning was logged
	suppressed int       // failures not logged since lastWarn
}

// position reads the partition's head, the entry after which t starts,
// retrying until it can or ctx is done.
func (t *tail) position(ctx context.Context) error {
	for {
		epoch, last, err := t.s.head(ctx, t.p)
		if err == nil {
			t.epoch, t.last, t.positioned = epoch, last, true
			t.p.position.Store(last)
			t.started(epoch, last)
			return nil
		}
		if err := t.failed(ctx, err); err != nil {
			return err
		}
	}
}

// checkEpoch re-reads the epoch; when it changed it delivers a Reset and
// rewinds to the start of the new stream.
func (t *tail) checkEpoch(ctx context.Context) error {
	epoch, _, err := t.s.head(ctx, t.p)
	if err != nil {
		return err
	}
	t.recheck = false
	if epoch != t.epoch {
		t.s.logger.WarnContext(ctx, "stream history lost, resetting subscribers",
			"stream", t.p.events, "old_epoch", t.epoch, "epoch", epoch)
		t.epoch, t.last = epoch, "0-0"
		t.emit(bridge.Batch{Reset: true}, epoch)
	}
	return nil
}

// deliver hands msgs to fn, in order. An entry of another epoch makes it
// re-read the epoch: if that changed, it resets and drops the rest of msgs
// (they are read again from the new stream's start); if not, the entry
// is not ours and is skipped.
func (t *tail) deliver(ctx context.Context, msgs []redis.XMessage) error {
	batch := make([]*bridge.Event, 0, len(msgs))
	flush := func() {
		if len(batch) > 0 {
			t.emit(bridge.Batch{Events: batch}, t.epoch)
			batch = nil
		}
	}
	for _, m := range msgs {
		ev, epoch, err := decode(m)
		if err != nil {
			t.s.logger.WarnContext(ctx, "skipping malformed stream entry", "stream", t.p.events, "entry_id", m.ID, "err", err)
			t.last = m.ID
			continue
		}
		if epoch != t.epoch {
			flush()
			old := t.epoch
			if err := t.checkEpoch(ctx); err != nil {
				t.recheck = true
				return err
			}
			if t.epoch != old {
				return nil
			}
			t.last = m.ID
			continue
		}
		batch = append(batch, ev)
		t.last = m.ID
	}
	flush()
	t.p.position.Store(t.last)
	return nil
}

// failed logs err (rate-limited) and sleeps for the next backoff delay. It
// returns ctx's error when ctx is done.
func (t *tail) failed(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	t.s.troubled(ctx)
	now := time.Now()
	if now.Sub(t.lastWarn) >= warnEvery {
		t.s.logger.WarnContext(ctx, "stream read failed, retrying",
			"stream", t.p.events, "err", err, "attempt", t.attempt+1, "suppressed", t.suppressed)
		t.lastWarn, t.suppressed = now, 0
	} else {
		t.suppressed++
	}
	t.failing = true
	// Full jitter: a uniform delay up to min(cap, base*2^attempt).
	d := min(t.s.backoffCap, backoffBase<<min(t.attempt, 16))
	t.attempt++
	timer := time.NewTimer(rand.N(d) + time.Millisecond)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// recovered resets the backoff after a successful read.
func (t *tail) recovered(ctx context.Context) {
	if t.failing {
		t.s.logger.LogAttrs(ctx, slog.LevelInfo, "stream read recovered",
			slog.String("stream", t.p.events), slog.Int("attempts", t.attempt))
	}
	t.attempt, t.failing, t.suppressed = 0, false, 0
}
