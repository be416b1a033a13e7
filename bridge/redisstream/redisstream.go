package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/bridge"
)

// Defaults of Options.
const (
	DefaultPrefix     = "hookwire"
	DefaultHistoryTTL = time.Hour
	DefaultDedupeTTL  = 24 * time.Hour
	DefaultReadCount  = 500
	DefaultReadBlock  = 2 * time.Second
	// defaultLimit applies to a HistoryQuery without Limit.
	defaultLimit = 500
)

// Options tune a Stream. Zero values mean the defaults.
type Options struct {
	// Prefix names the keys (HOOKWIRE_STREAM); replicas with the same
	// Redis and prefix form one bridge. Default "hookwire".
	Prefix string
	// HistoryTTL is how long events stay replayable (default 1h).
	HistoryTTL time.Duration
	// DedupeTTL is how long an event ID is remembered (default 24h).
	DedupeTTL time.Duration
	// ReadCount is the most entries one XREAD of Tail returns (default 500).
	ReadCount int
	// ReadBlock bounds one blocking XREAD of Tail (default 2s): Tail
	// notices a cancelled ctx within about that long.
	ReadBlock time.Duration
	// Logger gets Tail's warnings about outages (default: discard).
	Logger *slog.Logger
}

// Stream is a bridge.Stream on Redis Streams; see the package doc for the
// layout. It is safe for concurrent use.
type Stream struct {
	rdb        redis.UniversalClient
	events     string // {P}:events
	meta       string // {P}:meta
	tag        string // {P}
	historyMS  int64
	dedupeMS   int64
	scripts    scripts
	logger     *slog.Logger
	readCount  int64
	readBlock  time.Duration
	backoffCap time.Duration
	// position is the last entry ID a Tail read, for Lag.
	position atomic.Pointer[string]
	group    group
}

var _ bridge.Stream = (*Stream)(nil)

// New returns a Stream on rdb. The caller owns rdb (made with
// redis.ParseURL, which handles rediss:// and user:password URLs) and
// closes it after the last call. Each running Tail holds one of rdb's
// connections for up to ReadBlock at a time, so rdb's pool must be larger
// than the number of concurrent Tails (go-redis' default is 10 per CPU).
func New(rdb redis.UniversalClient, opts Options) *Stream {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.HistoryTTL <= 0 {
		opts.HistoryTTL = DefaultHistoryTTL
	}
	if opts.DedupeTTL <= 0 {
		opts.DedupeTTL = DefaultDedupeTTL
	}
	if opts.ReadCount <= 0 {
		opts.ReadCount = DefaultReadCount
	}
	if opts.ReadBlock <= 0 {
		opts.ReadBlock = DefaultReadBlock
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tag := "{" + opts.Prefix + "}"
	return &Stream{
		rdb:        rdb,
		events:     tag + ":events",
		meta:       tag + ":meta",
		tag:        tag,
		historyMS:  max(opts.HistoryTTL.Milliseconds(), 1),
		dedupeMS:   max(opts.DedupeTTL.Milliseconds(), 1),
		scripts:    newScripts(),
		logger:     opts.Logger,
		readCount:  int64(opts.ReadCount),
		readBlock:  opts.ReadBlock,
		backoffCap: 2 * time.Second,
	}
}

func (s *Stream) userKey(u string) string   { return s.tag + ":u:" + u }
func (s *Stream) chanKey(c string) string   { return s.tag + ":c:" + c }
func (s *Stream) dedupeKey(i string) string { return s.tag + ":id:" + i }

// unavailable wraps a Redis error so that errors.Is finds both
// bridge.ErrUnavailable and the cause (context.Canceled, net errors).
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, bridge.ErrUnavailable, err)
}

// Bounds of one append script call. A script blocks Redis while it runs,
// so Append splits larger calls into chunks of at most chunkEvents events
// and (unless one event is larger) chunkBytes of entry fields, all sent in
// one pipeline, in order.
const (
	chunkEvents = 200
	chunkBytes  = 1 << 20
)

// maxTraceFields bounds an event's trace fields and values, so that the
// count of its optional fields fits in the low 16 bits of its ARGV header
// (Lua's unpack would fail long before: it takes up to 8,000 values).
const maxTraceFields = 1<<16 - 16

// chunk is one call of appendSrc: evs[first:first+n] of an Append.
type chunk struct {
	first, n int
	size     int // bytes of entry fields
	keys     []string
	args     []any
}

// Append appends evs in order with one script call per chunk of up to 200
// events, all in one round trip; see bridge.Stream. Appends that arrive
// while another is in flight share the next round trip (group.go). An
// event without ID gets one from bridge.NewID. Any Redis failure is
// returned wrapping bridge.ErrUnavailable.
func (s *Stream) Append(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	if len(evs) == 0 {
		return []bridge.AppendResult{}, nil
	}
	for _, ev := range evs {
		if ev.ID == "" {
			ev.ID = bridge.NewID()
		}
		if 2*len(ev.Trace) > maxTraceFields {
			// Far more than the script could unpack anyway.
			return nil, unavailable("append to "+s.events, fmt.Errorf("event %s has %d trace fields", ev.ID, len(ev.Trace)))
		}
	}
	return s.group.append(ctx, evs, s.appendNow)
}

// appendNow appends evs, prepared by Append, in one round trip.
func (s *Stream) appendNow(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	epoch := bridge.NewEpoch() // used only if the broker has no epoch
	chunks := make([]*chunk, 0, (len(evs)+chunkEvents-1)/chunkEvents)
	var c *chunk
	for i, ev := range evs {
		size := eventSize(ev)
		if c == nil || c.n == chunkEvents || c.size+size > chunkBytes {
			c = s.newChunk(i, min(len(evs)-i, chunkEvents), epoch)
			chunks = append(chunks, c)
		}
		s.addEvent(c, ev)
		c.size += size
	}
	cmds := make([]*redis.Cmd, len(chunks))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		// EVALSHA only: sending the script body with every append
		// costs Redis a hash of it each time. A NOSCRIPT (a Redis that
		// restarted) ran nothing, so those calls are redone below, in
		// order, loading the script.
		for i, c := range chunks {
			cmds[i] = s.scripts.append.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if err != nil && !isNoScript(err) {
		return nil, unavailable("append to "+s.events, err)
	}
	res := make([]bridge.AppendResult, len(evs))
	for i, c := range chunks {
		cmd := cmds[i]
		if isNoScript(cmd.Err()) {
			// The script is not loaded (Redis restarted or
			// flushed its scripts): run this chunk with a fallback
			// to EVAL, after the ones before it, in order.
			cmd = s.scripts.append.Run(ctx, s.rdb, c.keys, c.args...)
		}
		if err := parseAppend(cmd, res[c.first:c.first+c.n]); err != nil {
			return nil, unavailable("append to "+s.events, err)
		}
		for i := c.first; i < c.first+c.n; i++ {
			if !res[i].Duplicate {
				evs[i].Cursor = res[i].Cursor
				evs[i].Time = time.UnixMilli(int64(res[i].Cursor.MS)).UTC()
			}
		}
	}
	return res, nil
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// newChunk returns an empty chunk starting at evs[first], with room for
// about n events.
func (s *Stream) newChunk(first, n int, epoch string) *chunk {
	c := &chunk{
		first: first,
		keys:  make([]string, 2, 2+2*n),
		args:  make([]any, 4, 4+12*n),
	}
	c.keys[0], c.keys[1] = s.events, s.meta
	c.args[0], c.args[1], c.args[2], c.args[3] = epoch, s.historyMS, s.dedupeMS, 0
	return c
}

// addEvent appends ev's KEYS and ARGV to c (see appendSrc).
func (s *Stream) addEvent(c *chunk, ev *bridge.Event) {
	c.n++
	c.args[3] = c.n
	c.keys = append(c.keys, s.dedupeKey(ev.ID))
	nkeys := len(c.keys)
	if len(ev.Users) > 0 {
		for i, u := range ev.Users {
			// A repeated user would add the same ID twice to one index.
			if !slices.Contains(ev.Users[:i], u) {
				c.keys = append(c.keys, s.userKey(u))
			}
		}
	} else if ev.Channel != "" {
		c.keys = append(c.keys, s.chanKey(ev.Channel))
	}
	nkeys = len(c.keys) - nkeys
	// The header is filled in once the fields are.
	head := len(c.args)
	c.args = append(c.args, 0, ev.ID, ev.Type)
	if len(ev.Users) > 0 {
		c.args = append(c.args, "u", strings.Join(ev.Users, "\n"))
	}
	if ev.Channel != "" {
		c.args = append(c.args, "c", ev.Channel)
	}
	if len(ev.Data) > 0 {
		c.args = append(c.args, "d", []byte(ev.Data))
	}
	for k, v := range ev.Trace {
		c.args = append(c.args, traceField(k), v)
	}
	c.args[head] = nkeys<<16 | (len(c.args) - head - 3) // see appendSrc
}

// eventSize estimates the bytes of ev's entry fields, to bound a chunk.
func eventSize(ev *bridge.Event) int {
	n := len(ev.ID) + len(ev.Type) + len(ev.Channel) + len(ev.Data)
	for _, u := range ev.Users {
		n += len(u) + 1
	}
	for k, v := range ev.Trace {
		n += len(k) + len(v)
	}
	return n
}

// traceField is the entry field of trace context key k.
func traceField(k string) string {
	switch k {
	case "traceparent":
		return "tp"
	case "tracestate":
		return "ts"
	}
	return "x-" + k
}

// parseAppend fills res, one result per event of a chunk, from the
// reply of its script call.
func parseAppend(cmd *redis.Cmd, res []bridge.AppendResult) error {
	v, err := cmd.Slice()
	if err != nil {
		return err
	}
	if len(v) != 2*len(res) {
		return fmt.Errorf("append script returned %d values for %d events", len(v), len(res))
	}
	for i := range res {
		dup, _ := v[2*i].(int64)
		str, _ := v[2*i+1].(string)
		c, err := bridge.ParseCursor(str)
		if err != nil || c.IsZero() {
			return fmt.Errorf("append script returned cursor %q: %w", str, err)
		}
		res[i] = bridge.AppendResult{Cursor: c, Duplicate: dup == 1}
	}
	return nil
}

// head returns the current epoch and the last entry ID ("0-0" when
// empty), creating the epoch when the broker has none.
func (s *Stream) head(ctx context.Context) (epoch, last string, err error) {
	v, err := s.scripts.head.Run(ctx, s.rdb, []string{s.events, s.meta}, bridge.NewEpoch()).StringSlice()
	if err != nil {
		return "", "", unavailable("read head of "+s.events, err)
	}
	if len(v) != 2 {
		return "", "", fmt.Errorf("head script returned %v", v)
	}
	return v[0], v[1], nil
}

// Head returns the newest cursor, or Cursor{Epoch: e} (MS and Seq zero)
// when the stream is empty. It creates the epoch when the broker has none.
func (s *Stream) Head(ctx context.Context) (bridge.Cursor, error) {
	epoch, last, err := s.head(ctx)
	if err != nil {
		return bridge.Cursor{}, err
	}
	c, err := bridge.ParseID(last)
	if err != nil {
		return bridge.Cursor{}, fmt.Errorf("last entry ID %q of %s: %w", last, s.events, err)
	}
	c.Epoch = epoch
	return c, nil
}

// Ready reports whether Redis answers PING and the meta hash is readable.
func (s *Stream) Ready(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	if err := s.rdb.HGet(ctx, s.meta, "e").Err(); err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("hget "+s.meta, err)
	}
	return nil
}

// decode turns a global stream entry into an event and returns its epoch.
func decode(m redis.XMessage) (*bridge.Event, string, error) {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	c, err := bridge.ParseID(m.ID)
	if err != nil {
		return nil, "", fmt.Errorf("entry ID %q: %w", m.ID, err)
	}
	epoch := str("e")
	c.Epoch = epoch
	ev := &bridge.Event{
		ID:      str("i"),
		Type:    str("t"),
		Channel: str("c"),
		Cursor:  c,
		Time:    time.UnixMilli(int64(c.MS)).UTC(),
	}
	if u := str("u"); u != "" {
		ev.Users = strings.Split(u, "\n")
	}
	if d := str("d"); d != "" {
		ev.Data = []byte(d)
	}
	for k, v := range m.Values {
		var name string
		switch {
		case k == "tp":
			name = "traceparent"
		case k == "ts":
			name = "tracestate"
		case strings.HasPrefix(k, "x-"):
			name = k[2:]
		default:
			continue
		}
		if ev.Trace == nil {
			ev.Trace = make(map[string]string, 2)
		}
		ev.Trace[name], _ = v.(string)
	}
	return ev, epoch, nil
}

// History returns the events after q.Since addressed to q.User or
// published without users on one of q.Channels; see bridge.Stream. It reads
// the indexes of the user and the channels, then fetches the events by ID:
// its cost is bounded by those targets' events, not by all traffic. A
// q.Limit <= 0 means 500.
func (s *Stream) History(ctx context.Context, q bridge.HistoryQuery) ([]*bridge.Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	var keys []string
	if q.User != "" {
		keys = append(keys, s.userKey(q.User))
	}
	for i, ch := range q.Channels {
		if !slices.Contains(q.Channels[:i], ch) {
			keys = append(keys, s.chanKey(ch))
		}
	}
	start, ok := nextID(q.Since)
	if !ok {
		return nil, fmt.Errorf("%w: cursor %s is after the newest event", bridge.ErrHistoryExpired, q.Since)
	}

	// Check and first index page in one MULTI, so that no append trims
	// between the checks and the reads.
	pipe := s.rdb.TxPipeline()
	metaCmd := pipe.HMGet(ctx, s.meta, "e", "w")
	timeCmd := pipe.Time(ctx)
	headCmd := pipe.XRevRangeN(ctx, s.events, "+", "-", 1)
	nextCmd := pipe.XRangeN(ctx, s.events, start, "+", 1)
	ranges := make([]*redis.XMessageSliceCmd, len(keys))
	for i, k := range keys {
		ranges[i] = pipe.XRangeN(ctx, k, start, "+", int64(limit))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("read history of "+s.events, err)
	}
	meta, err := metaCmd.Result()
	if err != nil {
		return nil, unavailable("hmget "+s.meta, err)
	}
	epoch, _ := meta[0].(string)
	switch {
	case epoch == "":
		return nil, fmt.Errorf("%w: cursor %s: the broker has no history", bridge.ErrHistoryExpired, q.Since)
	case epoch != q.Since.Epoch:
		return nil, fmt.Errorf("%w: cursor %s is of another epoch", bridge.ErrHistoryExpired, q.Since)
	}
	if err := errors.Join(timeCmd.Err(), headCmd.Err(), nextCmd.Err()); err != nil {
		return nil, unavailable("read history of "+s.events, err)
	}
	if h := headCmd.Val(); (len(h) == 0 && (q.Since.MS != 0 || q.Since.Seq != 0)) || (len(h) > 0 && after(q.Since, h[0].ID)) {
		return nil, fmt.Errorf("%w: cursor %s is after the newest event", bridge.ErrHistoryExpired, q.Since)
	}
	// Events after the cursor may be gone when the cursor is before the
	// last trim threshold, or when the first event after it is older than
	// the TTL (its index keys may have expired). A cursor at the head of
	// an idle stream stays valid however old it is: nothing follows it.
	if w, _ := meta[1].(string); w != "" {
		if wc, err := bridge.ParseID(w); err == nil && q.Since.Before(wc) {
			return nil, fmt.Errorf("%w: cursor %s is older than the retention", bridge.ErrHistoryExpired, q.Since)
		}
	}
	if n := nextCmd.Val(); len(n) > 0 {
		if nc, err := bridge.ParseID(n[0].ID); err == nil && int64(nc.MS) <= timeCmd.Val().UnixMilli()-s.historyMS {
			return nil, fmt.Errorf("%w: cursor %s is older than the retention", bridge.ErrHistoryExpired, q.Since)
		}
	}

	var out []*bridge.Event
	for {
		need := limit - len(out)
		ids, err := firstIDs(ranges, need)
		if err != nil {
			return nil, unavailable("read history of "+s.events, err)
		}
		evs, err := s.fetch(ctx, epoch, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		// Index entries whose event is gone (trimmed, or left by an
		// older epoch) were skipped: read on so the page is full
		// unless the indexes are exhausted.
		if len(out) >= limit || len(ids) < need {
			return out, nil
		}
		start = "(" + ids[len(ids)-1]
		pipe := s.rdb.Pipeline()
		for i, k := range keys {
			ranges[i] = pipe.XRangeN(ctx, k, start, "+", int64(limit-len(out)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, unavailable("read history of "+s.events, err)
		}
	}
}

// nextID returns the first entry ID after c, for XRANGE, and false when no
// ID can be after c.
func nextID(c bridge.Cursor) (string, bool) {
	switch {
	case c.Seq < math.MaxUint64:
		return strconv.FormatUint(c.MS, 10) + "-" + strconv.FormatUint(c.Seq+1, 10), true
	case c.MS < math.MaxUint64:
		return strconv.FormatUint(c.MS+1, 10) + "-0", true
	}
	return "", false
}

// after reports whether c is after entry ID id.
func after(c bridge.Cursor, id string) bool {
	h, err := bridge.ParseID(id)
	return err != nil || h.Before(c)
}

// firstIDs merges the IDs of the index pages (each in ID order) and returns
// the first n distinct ones. Every index page holds up to n entries, so the
// first n of the union are among them.
func firstIDs(ranges []*redis.XMessageSliceCmd, n int) ([]string, error) {
	type entry struct {
		id string
		c  bridge.Cursor
	}
	var all []entry
	for _, r := range ranges {
		msgs, err := r.Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			c, err := bridge.ParseID(m.ID)
			if err != nil {
				return nil, fmt.Errorf("index entry ID %q: %w", m.ID, err)
			}
			all = append(all, entry{m.ID, c})
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		switch {
		case a.c.Before(b.c):
			return -1
		case b.c.Before(a.c):
			return 1
		}
		return 0
	})
	all = slices.CompactFunc(all, func(a, b entry) bool { return a.c == b.c })
	ids := make([]string, 0, min(n, len(all)))
	for _, e := range all[:min(n, len(all))] {
		ids = append(ids, e.id)
	}
	return ids, nil
}

// fetch reads the global entries with ids in one round trip and returns
// those of epoch, in order.
func (s *Stream) fetch(ctx context.Context, epoch string, ids []string) ([]*bridge.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.XRangeN(ctx, s.events, id, id, 1)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("xrange "+s.events, err)
	}
	out := make([]*bridge.Event, 0, len(ids))
	for _, cmd := range cmds {
		msgs := cmd.Val()
		if len(msgs) == 0 {
			continue // trimmed since the index was read
		}
		ev, e, err := decode(msgs[0])
		if err != nil {
			return nil, fmt.Errorf("xrange %s: %w", s.events, err)
		}
		if e == epoch {
			out = append(out, ev)
		}
	}
	return out, nil
}
