// Package memstream is an in-memory bridge.Stream for a single process: the
// broker of `hookwire serve --dev` and of tests.
//
// It has the semantics of bridge/redisstream without Redis: entry IDs
// "<unix ms>-<seq>" that never go backwards, per-user and per-channel
// indexes so that History costs the target's own events, time-based
// retention applied lazily on Append, and an ID-based dedupe window. The
// epoch is random per process: a restarted --dev server has lost its
// history, and its clients' cursors are rejected as expired.
//
// It imports only bridge; it must not import Redis, HTTP or WebSocket
// packages.
package memstream

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

// Defaults of Options.
const (
	DefaultHistoryTTL = time.Hour
	DefaultDedupeTTL  = 24 * time.Hour
	// tailBatch is the most events one Tail callback receives.
	tailBatch = 500
	// defaultLimit applies to a HistoryQuery without Limit.
	defaultLimit = 500
)

// Options tune a Stream. Zero values mean the defaults.
type Options struct {
	// HistoryTTL is how long events stay replayable (default 1h).
	HistoryTTL time.Duration
	// DedupeTTL is how long an event ID is remembered (default 24h).
	DedupeTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stream is an in-memory bridge.Stream. It is safe for concurrent use.
type Stream struct {
	historyTTL time.Duration
	dedupeTTL  time.Duration
	now        func() time.Time
	epoch      string

	mu     sync.Mutex
	events []*bridge.Event // retained, in cursor order
	base   uint64          // absolute position of events[0]
	last   bridge.Cursor   // newest cursor ever issued (zero before the first)
	// dropped is the cursor of the newest event removed by retention:
	// a resume from before it may have missed events.
	dropped bridge.Cursor
	byUser  map[string][]*bridge.Event
	byChan  map[string][]*bridge.Event
	seen    map[string]seenID // dedupe window by event ID
	expiry  []idExpiry        // seen's entries in insertion order
	// wake is closed and replaced by every Append that appended
	// something, waking every Tail without a goroutine per event.
	wake chan struct{}
}

type seenID struct {
	cursor  bridge.Cursor
	expires time.Time
}

type idExpiry struct {
	id      string
	expires time.Time
}

var _ bridge.Stream = (*Stream)(nil)

// New returns an empty Stream with a fresh random epoch.
func New(opts Options) *Stream {
	if opts.HistoryTTL <= 0 {
		opts.HistoryTTL = DefaultHistoryTTL
	}
	if opts.DedupeTTL <= 0 {
		opts.DedupeTTL = DefaultDedupeTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Stream{
		historyTTL: opts.HistoryTTL,
		dedupeTTL:  opts.DedupeTTL,
		now:        opts.Now,
		epoch:      bridge.NewEpoch(),
		byUser:     make(map[string][]*bridge.Event),
		byChan:     make(map[string][]*bridge.Event),
		seen:       make(map[string]seenID),
		wake:       make(chan struct{}),
	}
}

// Epoch returns the stream's epoch.
func (s *Stream) Epoch() string { return s.epoch }

// Append appends evs in order; see bridge.Stream. It never fails except
// for ctx. An event without ID gets one from bridge.NewID.
func (s *Stream) Append(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", bridge.ErrUnavailable, err)
	}
	res := make([]bridge.AppendResult, len(evs))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	appended := false
	for i, ev := range evs {
		ev.AssignID()
		if prev, ok := s.seen[ev.ID]; ok {
			res[i] = bridge.AppendResult{Cursor: prev.cursor, Duplicate: true}
			continue
		}
		c := s.next(now)
		ev.Cursor = c
		ev.Time = time.UnixMilli(int64(c.MS)).UTC()
		ev = stored(ev)
		s.events = append(s.events, ev)
		for _, key := range indexUsers(ev) {
			s.byUser[key] = append(s.byUser[key], ev)
		}
		if len(ev.Users) == 0 {
			s.byChan[ev.Channel] = append(s.byChan[ev.Channel], ev)
		}
		exp := now.Add(s.dedupeTTL)
		s.seen[ev.ID] = seenID{cursor: c, expires: exp}
		s.expiry = append(s.expiry, idExpiry{id: ev.ID, expires: exp})
		res[i] = bridge.AppendResult{Cursor: c}
		appended = true
	}
	if appended {
		close(s.wake)
		s.wake = make(chan struct{})
	}
	return res, nil
}

// stored returns the copy of ev the stream keeps: the caller's event stays
// the caller's, and the copy, which Tail and History hand out to every
// reader, is read-only from here on (see bridge.Event).
func stored(ev *bridge.Event) *bridge.Event {
	return &bridge.Event{
		ID: ev.ID, Type: ev.Type, Users: slices.Clone(ev.Users), Channel: ev.Channel,
		Source: ev.Source, Data: bytes.Clone(ev.Data), Cursor: ev.Cursor, Time: ev.Time, Occurred: ev.Occurred,
		Trace: maps.Clone(ev.Trace),
	}
}

// next returns the cursor of a new entry accepted at now. s.mu is held.
// Like Redis auto IDs, it never goes backwards even if the clock does.
func (s *Stream) next(now time.Time) bridge.Cursor {
	ms := uint64(max(now.UnixMilli(), 0))
	c := bridge.Cursor{Epoch: s.epoch, MS: ms}
	if ms <= s.last.MS && !s.last.IsZero() {
		c.MS, c.Seq = s.last.MS, s.last.Seq+1
	}
	s.last = c
	return c
}

// indexUsers returns ev's distinct users: the index keys it is filed
// under. An event with users and a channel is filed under its users only.
func indexUsers(ev *bridge.Event) []string {
	if len(ev.Users) < 2 {
		return ev.Users
	}
	out := make([]string, 0, len(ev.Users))
	seen := make(map[string]struct{}, len(ev.Users))
	for _, u := range ev.Users {
		if _, dup := seen[u]; !dup {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}

// expire drops events older than the history TTL and IDs older than the
// dedupe TTL. s.mu is held.
func (s *Stream) expire(now time.Time) {
	horizon := now.Add(-s.historyTTL)
	n := 0
	for n < len(s.events) && s.events[n].Time.Before(horizon) {
		ev := s.events[n]
		// Indexes are in cursor order too, so ev is at the front of each.
		for _, u := range indexUsers(ev) {
			s.byUser[u] = popFront(s.byUser[u])
			if len(s.byUser[u]) == 0 {
				delete(s.byUser, u)
			}
		}
		if len(ev.Users) == 0 {
			s.byChan[ev.Channel] = popFront(s.byChan[ev.Channel])
			if len(s.byChan[ev.Channel]) == 0 {
				delete(s.byChan, ev.Channel)
			}
		}
		s.dropped = ev.Cursor
		s.events[n] = nil
		n++
	}
	s.events = s.events[n:]
	s.base += uint64(n)

	n = 0
	for n < len(s.expiry) && !s.expiry[n].expires.After(now) {
		x := s.expiry[n]
		// The ID may have been accepted again after it expired.
		if cur, ok := s.seen[x.id]; ok && !cur.expires.After(now) {
			delete(s.seen, x.id)
		}
		n++
	}
	clear(s.expiry[:n])
	s.expiry = s.expiry[n:]
}

func popFront(evs []*bridge.Event) []*bridge.Event {
	if len(evs) == 0 {
		return evs
	}
	evs[0] = nil
	return evs[1:]
}

// Tail calls fn with every event appended after the call, in order, in
// batches of at most 500, until ctx is done; see bridge.Stream. Its first
// call is the empty batch that says it is positioned.
func (s *Stream) Tail(ctx context.Context, fn func(bridge.Batch)) error {
	s.mu.Lock()
	pos := s.base + uint64(len(s.events))
	s.mu.Unlock()
	fn(bridge.Batch{})
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		reset := false
		if pos < s.base {
			// Trimmed before this reader got them: only possible if
			// fn stalled for a whole HistoryTTL.
			pos, reset = s.base, true
		}
		start := int(pos - s.base)
		end := min(len(s.events), start+tailBatch)
		evs := append([]*bridge.Event(nil), s.events[start:end]...)
		wake := s.wake
		s.mu.Unlock()
		if len(evs) > 0 || reset {
			pos += uint64(len(evs))
			fn(bridge.Batch{Reset: reset, Events: evs})
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// History returns the retained events after q.Since addressed to q.User or
// published (without users) on one of q.Channels; see bridge.Stream. Its
// cost is bounded by those targets' own events. A q.Limit <= 0 means 500.
// The events are the stream's own, shared with Tail and every other
// History: read-only, like every bridge.Event.
func (s *Stream) History(ctx context.Context, q bridge.HistoryQuery) ([]*bridge.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case q.Since.Epoch != s.epoch:
		return nil, fmt.Errorf("%w: cursor %s is of another epoch", bridge.ErrHistoryExpired, q.Since)
	case q.Since.Before(s.dropped):
		// Exact: events after the cursor were removed by retention.
		return nil, fmt.Errorf("%w: cursor %s is older than the retention", bridge.ErrHistoryExpired, q.Since)
	case s.last.Before(q.Since):
		return nil, fmt.Errorf("%w: cursor %s is after the newest event", bridge.ErrHistoryExpired, q.Since)
	}
	var lists [][]*bridge.Event
	if q.User != "" {
		lists = append(lists, after(s.byUser[q.User], q.Since, limit))
	}
	for i, ch := range q.Channels {
		if contains(q.Channels[:i], ch) {
			continue
		}
		lists = append(lists, after(s.byChan[ch], q.Since, limit))
	}
	return merge(lists, limit), nil
}

// after returns at most limit events of idx after since.
func after(idx []*bridge.Event, since bridge.Cursor, limit int) []*bridge.Event {
	i := sort.Search(len(idx), func(i int) bool { return since.Before(idx[i].Cursor) })
	return idx[i:min(len(idx), i+limit)]
}

// merge returns the first limit events of the union of lists, each in
// cursor order. An event is in at most one list (channel indexes hold only
// events without users), so there is nothing to deduplicate.
func merge(lists [][]*bridge.Event, limit int) []*bridge.Event {
	var out []*bridge.Event
	for len(out) < limit {
		best := -1
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || l[0].Cursor.Before(lists[best][0].Cursor)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, lists[best][0])
		lists[best] = lists[best][1:]
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Head returns the newest cursor, or the epoch's empty cursor (MS and Seq
// zero) when nothing was appended.
func (s *Stream) Head(ctx context.Context) (bridge.Cursor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		return bridge.Cursor{Epoch: s.epoch}, nil
	}
	return s.last, nil
}

// Ready reports whether the stream can be used: always, for memory.
func (s *Stream) Ready(ctx context.Context) error { return nil }
