package redisstream

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/bridge"
)

// History returns the events after q.Since addressed to q.User or
// published without users on one of q.Channels; see bridge.Stream. Per
// partition it reads (one script call, atomic with its checks) the
// indexes of the user and the channels there, and the events they name:
// its cost is bounded by those targets' events, not by all traffic. A
// q.Limit <= 0 means 500.
//
// With several partitions q.Since must be a vector cursor of as many
// partitions; the check (epoch, retention, not after the head) applies to
// each partition the query reads. The events come in ID order within each
// partition, merged by entry ID across partitions, and each carries the
// vector of q.Since advanced by the events before it and itself.
func (s *Stream) History(ctx context.Context, q bridge.HistoryQuery) ([]*bridge.Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	multi := len(s.parts) > 1
	switch {
	case q.Since.IsZero():
		return nil, fmt.Errorf("%w: no cursor", bridge.ErrHistoryExpired)
	case multi && q.Since.Partitions() != len(s.parts):
		return nil, fmt.Errorf("%w: cursor %s is not of %d partitions", bridge.ErrHistoryExpired, q.Since, len(s.parts))
	case !multi && q.Since.Partitions() != 0:
		return nil, fmt.Errorf("%w: cursor %s is of partitions, the stream has none", bridge.ErrHistoryExpired, q.Since)
	}
	// The index keys to read, per partition.
	keys := make(map[int][]string)
	if q.User != "" {
		p := s.partitionOf('u', q.User)
		keys[p] = append(keys[p], s.parts[p].userKey(q.User))
	}
	for i, ch := range q.Channels {
		if !slices.Contains(q.Channels[:i], ch) {
			p := s.partitionOf('c', ch)
			keys[p] = append(keys[p], s.parts[p].chanKey(ch))
		}
	}
	if len(keys) == 0 {
		// Nothing to read, but the cursor must still be valid.
		keys[0] = nil
	}
	parts := make([]int, 0, len(keys))
	for p := range keys {
		parts = append(parts, p)
	}
	slices.Sort(parts)

	cmds := make([]*redis.Cmd, len(parts))
	args := make([][]any, len(parts))
	allKeys := make([][]string, len(parts))
	for i, p := range parts {
		pos := q.Since.Pos(p)
		if _, ok := nextID(pos); !ok {
			return nil, fmt.Errorf("%w: cursor %s is after the newest event", bridge.ErrHistoryExpired, q.Since)
		}
		start := ""
		if pos.MS != 0 || pos.Seq != 0 {
			start = member(pos)
		}
		pt := s.parts[p]
		allKeys[i] = append([]string{pt.events, pt.meta}, keys[p]...)
		args[i] = []any{strconv.FormatUint(pos.MS, 10) + "-" + strconv.FormatUint(pos.Seq, 10), start, limit}
	}
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i := range parts {
			cmds[i] = s.scripts.history.EvalSha(ctx, pipe, allKeys[i], args[i]...)
		}
		return nil
	})
	per := make([][]*bridge.Event, len(parts))
	for i, p := range parts {
		cmd := cmds[i]
		if isNoScript(cmd.Err()) {
			cmd = s.scripts.history.Run(ctx, s.rdb, allKeys[i], args[i]...)
		}
		evs, err := s.parseHistory(ctx, cmd, s.parts[p], q.Since.Pos(p), q.Since)
		if err != nil {
			return nil, err
		}
		per[i] = evs
	}
	if !multi {
		return per[0], nil
	}
	return merge(per, parts, q.Since, limit), nil
}

// member is the index member of an entry ID (see appendSrc).
func member(pos bridge.PartPos) string {
	ms := strconv.FormatUint(pos.MS, 10)
	for len(ms) < 13 {
		ms = "0" + ms
	}
	seq := strconv.FormatUint(pos.Seq, 10)
	return ms + string(rune('0'+len(seq))) + seq
}

// parseHistory checks one partition's answer of historySrc against the
// cursor's position pos there and returns its events.
func (s *Stream) parseHistory(ctx context.Context, cmd *redis.Cmd, p *part, pos bridge.PartPos, since bridge.Cursor) ([]*bridge.Event, error) {
	v, err := cmd.Slice()
	if err != nil {
		s.troubled(ctx)
		return nil, unavailable("read history of "+p.events, err)
	}
	if len(v) < 5 || len(v)%2 != 1 {
		return nil, fmt.Errorf("history script of %s returned %d values", p.events, len(v))
	}
	epoch, _ := v[0].(string)
	w, _ := v[1].(string)
	nowStr, _ := v[2].(string)
	head, _ := v[3].(string)
	next, _ := v[4].(string)
	switch {
	case epoch == "":
		return nil, fmt.Errorf("%w: cursor %s: %s has no history", bridge.ErrHistoryExpired, since, p.events)
	case bridge.EpochSum(epoch) != pos.Epoch:
		return nil, fmt.Errorf("%w: cursor %s is of another epoch of %s", bridge.ErrHistoryExpired, since, p.events)
	}
	if (head == "" && (pos.MS != 0 || pos.Seq != 0)) || (head != "" && after(pos, head)) {
		return nil, fmt.Errorf("%w: cursor %s is after the newest event of %s", bridge.ErrHistoryExpired, since, p.events)
	}
	// Events after the cursor may be gone when the cursor is before the
	// last trim threshold, or when the first event after it is older than
	// the TTL (its index entries may have expired). A cursor at the head
	// of an idle stream stays valid however old it is: nothing follows it.
	if w != "" {
		if wc, err := bridge.ParseID(w); err == nil && pos.Before(bridge.PartPos{MS: wc.MS, Seq: wc.Seq}) {
			return nil, fmt.Errorf("%w: cursor %s is older than the retention of %s", bridge.ErrHistoryExpired, since, p.events)
		}
	}
	if next != "" {
		now, _ := strconv.ParseInt(nowStr, 10, 64)
		if nc, err := bridge.ParseID(next); err == nil && int64(nc.MS) <= now-s.historyMS {
			return nil, fmt.Errorf("%w: cursor %s is older than the retention of %s", bridge.ErrHistoryExpired, since, p.events)
		}
	}
	out := make([]*bridge.Event, 0, (len(v)-5)/2)
	for i := 5; i+1 < len(v); i += 2 {
		id, _ := v[i].(string)
		fields, _ := v[i+1].([]any)
		m := redis.XMessage{ID: id, Values: make(map[string]any, len(fields)/2)}
		for j := 0; j+1 < len(fields); j += 2 {
			k, _ := fields[j].(string)
			m.Values[k] = fields[j+1]
		}
		ev, e, err := decode(m)
		if err != nil {
			return nil, fmt.Errorf("read history of %s: %w", p.events, err)
		}
		if e == epoch {
			out = append(out, ev)
		}
	}
	return out, nil
}

// after reports whether pos is after entry ID id.
func after(pos bridge.PartPos, id string) bool {
	h, err := bridge.ParseID(id)
	return err != nil || (bridge.PartPos{MS: h.MS, Seq: h.Seq}).Before(pos)
}

// merge merges the partitions' events (each in ID order) by entry ID, takes
// the first limit and gives each the vector cursor of since advanced to
// it: a prefix of every partition's events, so that a resume from any of
// the cursors misses none.
func merge(per [][]*bridge.Event, parts []int, since bridge.Cursor, limit int) []*bridge.Event {
	pos := since.Positions()
	idx := make([]int, len(per))
	out := make([]*bridge.Event, 0, limit)
	var vec *bridge.Vector
	lastPart := -1
	for len(out) < limit {
		best := -1
		for i, evs := range per {
			if idx[i] >= len(evs) {
				continue
			}
			if best < 0 || evs[idx[i]].Cursor.Before(per[best][idx[best]].Cursor) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		ev := per[best][idx[best]]
		idx[best]++
		p := parts[best]
		if vec == nil || p != lastPart {
			vec = bridge.NewVector(pos)
			lastPart = p
		}
		own := bridge.EpochSum(ev.Cursor.Epoch)
		ev.Cursor = vec.At(p, ev.Cursor.MS, ev.Cursor.Seq)
		pos[p] = bridge.PartPos{Epoch: own, MS: ev.Cursor.MS, Seq: ev.Cursor.Seq}
		out = append(out, ev)
	}
	return out
}
