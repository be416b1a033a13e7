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
	// DefaultClusterPartitions is the partition count on a Redis Cluster
	// when Options.Partitions is zero (Open).
	DefaultClusterPartitions = 16
	// DefaultWaitTimeout bounds the WAIT of Options.MinReplicas.
	DefaultWaitTimeout = time.Second
	// defaultLimit applies to a HistoryQuery without Limit.
	defaultLimit = 500
)

// Options tune a Stream. Zero values mean the defaults.
type Options struct {
	// Prefix names the keys (HOOKWIRE_STREAM); replicas with the same
	// Redis and prefix form one bridge. Default "hookwire".
	Prefix string
	// Partitions is how many streams events are spread over
	// (HOOKWIRE_PARTITIONS, 1..32). Default 1 for New; Open defaults to
	// 16 on a Redis Cluster.
	Partitions int
	// HistoryTTL is how long events stay replayable (default 1h).
	HistoryTTL time.Duration
	// DedupeTTL is how long an event ID is remembered (default 24h).
	DedupeTTL time.Duration
	// ReadCount is the most entries one XREAD of Tail returns (default 500).
	ReadCount int
	// ReadBlock bounds one blocking XREAD of Tail (default 2s): Tail
	// notices a cancelled ctx within about that long.
	ReadBlock time.Duration
	// MinReplicas, when positive, makes Append wait (WAIT) until that
	// many Redis replicas hold its events before returning; if they do
	// not within WaitTimeout, Append fails with bridge.ErrUnavailable
	// (the events may still be delivered).
	MinReplicas int
	// WaitTimeout bounds that wait (default 1s).
	WaitTimeout time.Duration
	// Logger gets Tail's warnings about outages (default: discard).
	Logger *slog.Logger
}

// Stream is a bridge.Stream on Redis Streams; see the package doc for the
// layout. It is safe for concurrent use.
type Stream struct {
	rdb         redis.UniversalClient
	prefix      string
	parts       []*part
	historyMS   int64
	dedupeMS    int64
	scripts     scripts
	logger      *slog.Logger
	readCount   int64
	readBlock   time.Duration
	backoffCap  time.Duration
	minReplicas int
	waitTimeout time.Duration
	known       known
	group       group
	// closeClient, set by Open, closes the client Open made.
	closeClient func() error
	cluster     bool
	// lastReload is when troubled last asked the cluster client to
	// reload the slot map (unix ns).
	lastReload atomic.Int64
}

// troubled is called after a failed Redis call: on a cluster, the slot
// map may be stale (a failover promoted a replica, a node is down), and
// go-redis only reloads it by itself after a MOVED or every 10s. It asks
// for a reload at most every 200ms.
func (s *Stream) troubled(ctx context.Context) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastReload.Load()
	if now-last < int64(200*time.Millisecond) || !s.lastReload.CompareAndSwap(last, now) {
		return
	}
	cc.ReloadState(ctx)
}

var _ bridge.Stream = (*Stream)(nil)

// New returns a Stream on rdb. The caller owns rdb (made with
// redis.ParseURL, which handles rediss:// and user:password URLs, or a
// cluster client) and closes it after the last call. Each running Tail
// holds one of rdb's connections per partition for up to ReadBlock at a
// time, so rdb's pool must be larger than that (go-redis' default is 10
// per CPU). Open makes the client from a URL and checks the partition
// count.
func New(rdb redis.UniversalClient, opts Options) *Stream {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 1
	}
	opts.Partitions = min(opts.Partitions, bridge.MaxPartitions)
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
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stream{
		rdb:         rdb,
		prefix:      opts.Prefix,
		parts:       newParts(opts.Prefix, opts.Partitions),
		historyMS:   max(opts.HistoryTTL.Milliseconds(), 1),
		dedupeMS:    max(opts.DedupeTTL.Milliseconds(), 1),
		scripts:     newScripts(),
		logger:      opts.Logger,
		readCount:   int64(opts.ReadCount),
		readBlock:   opts.ReadBlock,
		backoffCap:  2 * time.Second,
		minReplicas: opts.MinReplicas,
		waitTimeout: opts.WaitTimeout,
	}
	_, s.cluster = rdb.(*redis.ClusterClient)
	s.known.pos = make([]bridge.PartPos, len(s.parts))
	return s
}

// Partitions returns the number of partitions.
func (s *Stream) Partitions() int { return len(s.parts) }

// Cluster reports whether the stream runs on a Redis Cluster.
func (s *Stream) Cluster() bool { return s.cluster }

// Close closes the client Open made; it is a no-op for a Stream from New.
func (s *Stream) Close() error {
	if s.closeClient == nil {
		return nil
	}
	return s.closeClient()
}

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
// count of its optional fields fits in 16 bits of its ARGV header (Lua's
// unpack would fail long before: it takes up to 8,000 values).
const maxTraceFields = 1<<16 - 16

// chunk is one call of appendSrc: copies of one partition.
type chunk struct {
	part   *part
	copies []copyOf
	size   int // bytes of entry fields
	keys   []string
	args   []any
}

// Append appends evs in order with one script call per partition and
// chunk of up to 200 events, all in one round trip; see bridge.Stream.
// Appends that arrive while another is in flight share the next round trip
// (group.go). An event without ID gets one from bridge.NewID. Any Redis
// failure is returned wrapping bridge.ErrUnavailable.
//
// With several partitions, an event goes to its users' partitions (once
// per partition, each copy with that partition's users and its own dedupe
// record) or to its channel's; it is a duplicate only when every copy is,
// and its cursor is that of its first copy. When a partition fails, the
// Appends with events there fail and the others succeed.
func (s *Stream) Append(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	if len(evs) == 0 {
		return []bridge.AppendResult{}, nil
	}
	for _, ev := range evs {
		ev.AssignID()
		if 2*len(ev.Trace) > maxTraceFields {
			// Far more than the script could unpack anyway.
			return nil, unavailable("append to "+s.parts[0].events, fmt.Errorf("event %s has %d trace fields", ev.ID, len(ev.Trace)))
		}
	}
	return s.group.append(ctx, evs, s.appendNow)
}

// appendNow appends evs, prepared by Append, in one round trip. errs[i] is
// set for each event whose partition failed.
func (s *Stream) appendNow(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, []error) {
	if len(s.parts) > 1 && s.known.missing() {
		// The cursors carry every partition's position: learn them
		// once, before the appends, so they are not ahead of them.
		_, _ = s.Head(ctx)
	}
	// The other partitions' positions in the cursors: as known before
	// the appends, so never ahead of what came before each event.
	var cur []bridge.PartPos
	if len(s.parts) > 1 {
		cur = s.known.snapshot()
	}
	epoch := bridge.NewEpoch() // used only if a partition has no epoch
	var chunks []*chunk
	for p, copies := range s.split(evs) {
		var c *chunk
		for _, cp := range copies {
			size := eventSize(cp.ev)
			if c == nil || len(c.copies) == chunkEvents || c.size+size > chunkBytes {
				c = s.newChunk(s.parts[p], min(len(copies), chunkEvents), epoch)
				chunks = append(chunks, c)
			}
			s.addEvent(c, cp)
			c.size += size
		}
	}
	cmds := make([]*redis.Cmd, len(chunks))
	var waits []*redis.Cmd
	var pipeErr error
	if s.minReplicas > 0 {
		waits, pipeErr = s.appendWait(ctx, chunks, cmds)
	} else {
		_, pipeErr = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			// EVALSHA only: sending the script body with every append
			// costs Redis a hash of it each time. A NOSCRIPT (a Redis
			// that restarted) ran nothing, so those calls are redone
			// below, in order, loading the script.
			for i, c := range chunks {
				cmds[i] = s.scripts.append.EvalSha(ctx, p, c.keys, c.args...)
			}
			return nil
		})
	}
	res := make([]bridge.AppendResult, len(evs))
	errs := make([]error, len(evs))
	// Per event: how many copies were appended (not duplicates), its
	// first copy's partition cursor, and where its copies went.
	fresh := make([]int, len(evs))
	first := make([]bridge.Cursor, len(evs))
	firstPart := make([]int, len(evs))
	seen := make([]bool, len(evs))
	var placed [][]placement
	if len(s.parts) > 1 {
		placed = make([][]placement, len(evs))
	}
	failedPart := map[*part]error{}
	for i, c := range chunks {
		cmd := cmds[i]
		err := failedPart[c.part]
		if err == nil && cmd == nil {
			err = pipeErr
		}
		if err == nil && isNoScript(cmd.Err()) {
			// The script is not loaded (Redis restarted or flushed
			// its scripts): run this chunk with a fallback to EVAL,
			// after the ones before it, in order.
			cmd = s.scripts.append.Run(ctx, s.rdb, c.keys, c.args...)
		}
		var out []bridge.AppendResult
		if err == nil {
			out = make([]bridge.AppendResult, len(c.copies))
			err = parseAppend(cmd, out)
		}
		if err != nil {
			s.troubled(ctx)
			// Later chunks of this partition must not count: the
			// order of its events would break.
			err = unavailable("append to "+c.part.events, err)
			failedPart[c.part] = err
			for _, cp := range c.copies {
				errs[cp.index] = err
			}
			continue
		}
		for j, cp := range c.copies {
			r := out[j]
			if !r.Duplicate {
				fresh[cp.index]++
				if placed != nil {
					placed[cp.index] = append(placed[cp.index], placement{c.part.n, r.Cursor.Pos(0)})
				}
			}
			if !seen[cp.index] {
				seen[cp.index] = true
				first[cp.index], firstPart[cp.index] = r.Cursor, c.part.n
				res[cp.index].Duplicate = r.Duplicate
			}
		}
	}
	for i, w := range waits {
		if w == nil {
			continue
		}
		if n, err := w.Int64(); err != nil || n < int64(s.minReplicas) {
			if err == nil {
				err = fmt.Errorf("%d of %d replicas acknowledged within %v", n, s.minReplicas, s.waitTimeout)
			}
			err = unavailable("wait for replicas of "+chunks[i].part.events, err)
			for _, cp := range chunks[i].copies {
				errs[cp.index] = err
			}
		}
	}
	var vec *bridge.Vector
	vecPart := -1
	for i, ev := range evs {
		if errs[i] != nil {
			continue
		}
		if fresh[i] > 0 {
			res[i].Duplicate = false
		}
		c := first[i]
		if placed != nil {
			// A vector cursor: this process's newest known positions
			// in the other partitions, up to the events before it.
			// The event's copies are covered by its cursor, all of
			// them: a resume from it must not replay the event.
			for _, pl := range placed[i] {
				if cur[pl.part].Epoch != pl.pos.Epoch || cur[pl.part].Before(pl.pos) {
					cur[pl.part] = pl.pos
				}
				s.known.update(pl.part, pl.pos)
			}
			if vec == nil || firstPart[i] != vecPart || len(placed[i]) > 1 {
				vec, vecPart = bridge.NewVector(cur), firstPart[i]
				if len(placed[i]) > 1 {
					vecPart = -1 // holds this event's other copies: not for the next
				}
			}
			p := c.Pos(0)
			c = vec.At(firstPart[i], p.MS, p.Seq)
		}
		res[i].Cursor = c
		if !res[i].Duplicate {
			ev.Cursor = c
			ev.Time = time.UnixMilli(int64(c.MS)).UTC()
		}
	}
	return res, errs
}

// placement is where one copy of an event was appended.
type placement struct {
	part int
	pos  bridge.PartPos
}

// appendWait runs the chunks like appendNow, followed by one WAIT per
// connection that wrote, on that connection: WAIT counts the replicas that
// acknowledged the writes of the connection it is sent on. On a cluster,
// each partition's chunks go to its primary's client in one pipeline.
func (s *Stream) appendWait(ctx context.Context, chunks []*chunk, cmds []*redis.Cmd) ([]*redis.Cmd, error) {
	waits := make([]*redis.Cmd, len(chunks))
	run := func(c redis.Cmdable, idx []int) error {
		pipe := func(idx []int) error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, i := range idx {
					cmds[i] = s.scripts.append.EvalSha(ctx, p, chunks[i].keys, chunks[i].args...)
				}
				waits[idx[len(idx)-1]] = p.Do(ctx, "WAIT", s.minReplicas, s.waitTimeout.Milliseconds())
				return nil
			})
			return err
		}
		err := pipe(idx)
		final := waits[idx[len(idx)-1]]
		defer func() {
			for _, i := range idx {
				waits[i] = final
			}
		}()
		if !isNoScript(err) {
			return err
		}
		// The script was not loaded (a restarted Redis): load it and run
		// the chunks that did not run again, with their own WAIT, so
		// that the WAIT follows their writes on the same connection.
		var again []int
		for _, i := range idx {
			if isNoScript(cmds[i].Err()) {
				again = append(again, i)
			}
		}
		if err := s.scripts.append.Load(ctx, c).Err(); err != nil {
			return err
		}
		err = pipe(again)
		final = waits[again[len(again)-1]]
		return err
	}
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		idx := make([]int, len(chunks))
		for i := range idx {
			idx[i] = i
		}
		return waits, run(s.rdb, idx)
	}
	byPart := map[*part][]int{}
	for i, c := range chunks {
		byPart[c.part] = append(byPart[c.part], i)
	}
	var firstErr error
	for p, idx := range byPart {
		node, err := cc.MasterForKey(ctx, p.events)
		if err == nil {
			err = run(node, idx)
		}
		if err != nil && !isNoScript(err) {
			cc.ReloadState(ctx)
			for _, i := range idx {
				if cmds[i] == nil || cmds[i].Err() == nil {
					c := redis.NewCmd(ctx)
					c.SetErr(err)
					cmds[i] = c
				}
			}
			firstErr = errors.Join(firstErr, err)
		}
	}
	return waits, firstErr
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// newChunk returns an empty chunk of partition p, with room for about n
// events.
func (s *Stream) newChunk(p *part, n int, epoch string) *chunk {
	c := &chunk{
		part:   p,
		copies: make([]copyOf, 0, n),
		keys:   make([]string, 2, 2+2*n),
		args:   make([]any, 4, 4+12*n),
	}
	c.keys[0], c.keys[1] = p.events, p.meta
	c.args[0], c.args[1], c.args[2], c.args[3] = epoch, s.historyMS, s.dedupeMS, 0
	return c
}

// addEvent appends a copy's KEYS and ARGV to c (see appendSrc).
func (s *Stream) addEvent(c *chunk, cp copyOf) {
	ev := cp.ev
	c.copies = append(c.copies, cp)
	c.args[3] = len(c.copies)
	dedupe := 0
	if !ev.GeneratedID {
		dedupe = 1
		c.keys = append(c.keys, c.part.dedupeKey(ev.ID))
	}
	nkeys := len(c.keys)
	if len(cp.users) > 0 {
		for i, u := range cp.users {
			// A repeated user would add the same ID twice to one index.
			if !slices.Contains(cp.users[:i], u) {
				c.keys = append(c.keys, c.part.userKey(u))
			}
		}
	} else if ev.Channel != "" {
		c.keys = append(c.keys, c.part.chanKey(ev.Channel))
	}
	nkeys = len(c.keys) - nkeys
	// The header is filled in once the fields are.
	head := len(c.args)
	c.args = append(c.args, 0, ev.ID, ev.Type)
	if len(cp.users) > 0 {
		c.args = append(c.args, "u", strings.Join(cp.users, "\n"))
	}
	if ev.Channel != "" {
		c.args = append(c.args, "c", ev.Channel)
	}
	if ev.Source != "" {
		c.args = append(c.args, "s", ev.Source)
	}
	if !ev.Occurred.IsZero() {
		c.args = append(c.args, "o", ev.Occurred.UTC().Format(time.RFC3339Nano))
	}
	if len(ev.Data) > 0 {
		c.args = append(c.args, "d", []byte(ev.Data))
	}
	for k, v := range ev.Trace {
		c.args = append(c.args, traceField(k), v)
	}
	c.args[head] = (nkeys<<16|(len(c.args)-head-3))*2 + dedupe // see appendSrc
}

// eventSize estimates the bytes of ev's entry fields, to bound a chunk.
func eventSize(ev *bridge.Event) int {
	n := len(ev.ID) + len(ev.Type) + len(ev.Channel) + len(ev.Data) + len(ev.Source) + 36
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
// reply of its script call. Cursors are of the partition alone.
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

// head returns partition p's current epoch and last entry ID ("0-0" when
// empty), creating the epoch when the partition has none.
func (s *Stream) head(ctx context.Context, p *part) (epoch, last string, err error) {
	v, err := s.scripts.head.Run(ctx, s.rdb, []string{p.events, p.meta}, bridge.NewEpoch()).StringSlice()
	if err != nil {
		return "", "", unavailable("read head of "+p.events, err)
	}
	if len(v) != 2 {
		return "", "", fmt.Errorf("head script returned %v", v)
	}
	return v[0], v[1], nil
}

// Head returns the newest cursor, or Cursor{Epoch: e} (MS and Seq zero)
// when the stream is empty. It creates the epoch when the broker has none.
// With several partitions it is the vector of every partition's head; a
// partition that cannot be read gets this process's newest known position
// of it, and Head fails only when none can be read.
func (s *Stream) Head(ctx context.Context) (bridge.Cursor, error) {
	if len(s.parts) == 1 {
		epoch, last, err := s.head(ctx, s.parts[0])
		if err != nil {
			return bridge.Cursor{}, err
		}
		c, err := bridge.ParseID(last)
		if err != nil {
			return bridge.Cursor{}, fmt.Errorf("last entry ID %q of %s: %w", last, s.parts[0].events, err)
		}
		c.Epoch = epoch
		return c, nil
	}
	cmds := make([]*redis.Cmd, len(s.parts))
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range s.parts {
			cmds[i] = s.scripts.head.EvalSha(ctx, pipe, []string{p.events, p.meta}, bridge.NewEpoch())
		}
		return nil
	})
	var lastErr error
	ok := 0
	for i, p := range s.parts {
		cmd := cmds[i]
		if isNoScript(cmd.Err()) {
			cmd = s.scripts.head.Run(ctx, s.rdb, []string{p.events, p.meta}, bridge.NewEpoch())
		}
		v, err := cmd.StringSlice()
		if err == nil && len(v) != 2 {
			err = fmt.Errorf("head script returned %v", v)
		}
		var c bridge.Cursor
		if err == nil {
			c, err = bridge.ParseID(v[1])
		}
		if err != nil {
			s.troubled(ctx)
			lastErr = unavailable("read head of "+p.events, err)
			continue
		}
		ok++
		s.known.update(i, bridge.PartPos{Epoch: bridge.EpochSum(v[0]), MS: c.MS, Seq: c.Seq})
	}
	if ok == 0 {
		return bridge.Cursor{}, lastErr
	}
	return bridge.NewVector(s.known.snapshot()).Cursor(), nil
}

// Ready reports whether Redis answers for at least one partition (PING of
// its node and its meta hash readable): while one is up, the partitions
// there accept and deliver events.
func (s *Stream) Ready(ctx context.Context) error {
	var lastErr error
	if len(s.parts) == 1 {
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			return unavailable("ping", err)
		}
	}
	cmds := make([]*redis.StringCmd, len(s.parts))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, pt := range s.parts {
			cmds[i] = p.HGet(ctx, pt.meta, "e")
		}
		return nil
	})
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			lastErr = unavailable("hget "+s.parts[i].meta, err)
			continue
		}
		return nil
	}
	return lastErr
}

// decode turns a partition stream entry into an event and returns its
// epoch. The event's cursor is of the partition alone.
func decode(m redis.XMessage) (*bridge.Event, string, error) {
	c, err := bridge.ParseID(m.ID)
	if err != nil {
		return nil, "", fmt.Errorf("entry ID %q: %w", m.ID, err)
	}
	ev := &bridge.Event{Time: time.UnixMilli(int64(c.MS)).UTC()}
	var epoch string
	// One pass over the fields: this runs for every entry every replica
	// reads, most of which match none of its connections.
	for k, v := range m.Values {
		str, _ := v.(string)
		switch k {
		case "e":
			epoch = str
		case "i":
			ev.ID = str
		case "t":
			ev.Type = str
		case "c":
			ev.Channel = str
		case "s":
			ev.Source = str
		case "o":
			if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
				ev.Occurred = t
			}
		case "u":
			if str == "" {
				break
			}
			if strings.IndexByte(str, '\n') < 0 {
				ev.Users = []string{str}
			} else {
				ev.Users = strings.Split(str, "\n")
			}
		case "d":
			if str != "" {
				ev.Data = []byte(str)
			}
		default:
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
			ev.Trace[name] = str
		}
	}
	c.Epoch = epoch
	ev.Cursor = c
	return ev, epoch, nil
}

// nextID returns the first entry ID after c, and false when no ID can be
// after c.
func nextID(c bridge.PartPos) (string, bool) {
	switch {
	case c.Seq < math.MaxUint64:
		return strconv.FormatUint(c.MS, 10) + "-" + strconv.FormatUint(c.Seq+1, 10), true
	case c.MS < math.MaxUint64:
		return strconv.FormatUint(c.MS+1, 10) + "-0", true
	}
	return "", false
}
