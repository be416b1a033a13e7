package redisstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"

	"github.com/hookwire/hookwire/bridge"
)

// part is one partition: a stream with its own meta hash, indexes and
// dedupe keys, all under one hash tag (one Redis Cluster slot).
type part struct {
	n      int
	tag    string // {P} with one partition, {P.i…} with several
	events string // tag + ":events"
	meta   string // tag + ":meta"
	// position is the last entry ID this process's Tail read, for PartitionLag.
	position positionPtr
}

func (p *part) userKey(u string) string   { return p.tag + ":u:" + u }
func (p *part) chanKey(c string) string   { return p.tag + ":c:" + c }
func (p *part) dedupeKey(i string) string { return p.tag + ":id:" + i }

// newParts returns the partitions of prefix. One partition keeps the
// layout of a bridge without partitions ({P}:events…), so that its keys
// and cursors stay valid. With n > 1 partition i's tag is "{P.i}", or
// "{P.i.k}" for the smallest k that puts it in the i-th n-th of the 16,384
// hash slots: Redis Cluster gives each primary a contiguous slot range, so
// the partitions spread evenly over the primaries.
func newParts(prefix string, n int) []*part {
	parts := make([]*part, n)
	for i := range parts {
		tag := "{" + prefix + "}"
		if n > 1 {
			lo, hi := i*16384/n, (i+1)*16384/n
			name := prefix + "." + strconv.Itoa(i)
			for k := 1; ; k++ {
				if s := int(slot(name)); s >= lo && s < hi {
					break
				}
				name = prefix + "." + strconv.Itoa(i) + "." + strconv.Itoa(k)
			}
			tag = "{" + name + "}"
		}
		parts[i] = &part{n: i, tag: tag, events: tag + ":events", meta: tag + ":meta"}
	}
	return parts
}

// slot is Redis Cluster's hash slot of a hash tag's content: CRC16
// (XMODEM) mod 16384.
func slot(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// partitionOf returns the partition of a user ("u") or channel ("c") key.
func (s *Stream) partitionOf(kind byte, name string) int {
	if len(s.parts) == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte{kind, ':'})
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(len(s.parts)))
}

// copyOf is the part of an event appended to one partition: an event to
// users of several partitions is appended once per partition, each copy
// with that partition's users.
type copyOf struct {
	ev    *bridge.Event
	index int // of the event in the Append
	users []string
}

// split returns, per partition, the copies of evs it receives, in order:
// an event with users goes to each of its users' partitions (with those
// users), one with a channel only to the channel's.
func (s *Stream) split(evs []*bridge.Event) [][]copyOf {
	per := make([][]copyOf, len(s.parts))
	for i, ev := range evs {
		if len(ev.Users) == 0 {
			p := s.partitionOf('c', ev.Channel)
			per[p] = append(per[p], copyOf{ev: ev, index: i})
			continue
		}
		if len(s.parts) == 1 {
			per[0] = append(per[0], copyOf{ev: ev, index: i, users: ev.Users})
			continue
		}
		var touched []int
		for _, u := range ev.Users {
			p := s.partitionOf('u', u)
			j := slices.Index(touched, p)
			if j < 0 {
				touched = append(touched, p)
				per[p] = append(per[p], copyOf{ev: ev, index: i})
				j = len(touched) - 1
			}
			if c := &per[p][len(per[p])-1]; !slices.Contains(c.users, u) {
				c.users = append(c.users, u)
			}
		}
	}
	return per
}

// partitionsKey records the partition count of the bridge; it has no
// expiry.
func (s *Stream) partitionsKey() string { return "{" + s.prefix + "}:partitions" }

// ErrPartitions is returned by Open when the bridge already
// runs with another partition count.
var ErrPartitions = errors.New("partition count differs from the bridge's")

// checkPartitions records the stream's partition count in Redis when none
// is recorded, and fails with ErrPartitions when another one is: replicas
// of one bridge must agree, or events would go to partitions that other
// replicas never read.
func (s *Stream) checkPartitions(ctx context.Context) error {
	key := s.partitionsKey()
	want := strconv.Itoa(len(s.parts))
	if err := s.rdb.SetNX(ctx, key, want, 0).Err(); err != nil {
		return unavailable("record partitions in "+key, err)
	}
	got, err := s.rdb.Get(ctx, key).Result()
	if err != nil {
		return unavailable("read partitions from "+key, err)
	}
	if got != want {
		return fmt.Errorf("%w: %s holds %s, this replica has HOOKWIRE_PARTITIONS=%s; start every replica with %s (or use another HOOKWIRE_STREAM)",
			ErrPartitions, key, got, want, got)
	}
	return nil
}

// positionPtr holds a partition's last read entry ID.
type positionPtr struct {
	mu sync.Mutex
	id string
}

func (p *positionPtr) Store(id string) { p.mu.Lock(); p.id = id; p.mu.Unlock() }
func (p *positionPtr) Load() string    { p.mu.Lock(); defer p.mu.Unlock(); return p.id }

// known tracks, per partition, the newest position this process has seen
// (its own appends, its Tail's reads, Head): an Append's cursor carries it
// for the partitions the event did not go to. It is never ahead of a
// partition's head, so a resume from such a cursor misses nothing (it may
// replay events from before the appended one).
type known struct {
	mu  sync.Mutex
	pos []bridge.PartPos
}

func (k *known) update(p int, pos bridge.PartPos) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur := k.pos[p]; cur.Epoch != pos.Epoch || cur.Before(pos) {
		k.pos[p] = pos
	}
}

// missing reports whether a partition's position is unknown.
func (k *known) missing() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.ContainsFunc(k.pos, func(p bridge.PartPos) bool { return p.Epoch == 0 })
}

func (k *known) snapshot() []bridge.PartPos {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.pos)
}

// EventsKeyOf returns the stream key of the partition that an event to
// user goes to, or, when user is empty, an event on channel: tests and
// operators use it to find the node that holds it.
func (s *Stream) EventsKeyOf(user, channel string) string {
	if user != "" {
		return s.parts[s.partitionOf('u', user)].events
	}
	return s.parts[s.partitionOf('c', channel)].events
}

// PartitionOf returns the partition an event to user (or, when user is
// empty, on channel) goes to: its index in vector cursors.
func (s *Stream) PartitionOf(user, channel string) int {
	if user != "" {
		return s.partitionOf('u', user)
	}
	return s.partitionOf('c', channel)
}
