package redisstream

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/bridge"
)

// lagCap bounds how many unread entries PartitionLag counts per partition.
const lagCap = 1000

// PartLag is the read lag of one partition.
type PartLag struct {
	Partition int
	Entries   int64
	Age       time.Duration
	Err       error // the partition could not be read
}

// PartitionLag reports how far this replica's Tail is behind each
// partition: the number of entries appended but not yet read (counted up
// to 1000), and the age of the oldest of them (zero when caught up). A
// partition reports zeros before Tail has read its position. The error is
// set when no partition could be read.
func (s *Stream) PartitionLag(ctx context.Context) ([]PartLag, error) {
	out := make([]PartLag, len(s.parts))
	unread := make([]*redis.XMessageSliceCmd, len(s.parts))
	now := make([]*redis.Cmd, len(s.parts))
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range s.parts {
			last := p.position.Load()
			if last == "" {
				continue
			}
			unread[i] = pipe.XRangeN(ctx, p.events, "("+last, "+", lagCap)
			// The partition's node's clock: a keyed script, so that a
			// cluster sends it to that node.
			now[i] = pipe.Eval(ctx, "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)", []string{p.meta})
		}
		return nil
	})
	var lastErr error
	ok := 0
	for i := range s.parts {
		out[i].Partition = i
		if unread[i] == nil {
			ok++
			continue
		}
		if err := unread[i].Err(); err != nil {
			out[i].Err = unavailable("lag of "+s.parts[i].events, err)
			lastErr = out[i].Err
			continue
		}
		ok++
		msgs := unread[i].Val()
		out[i].Entries = int64(len(msgs))
		if len(msgs) == 0 {
			continue
		}
		first, err := bridge.ParseID(msgs[0].ID)
		ms, err2 := now[i].Int64()
		if err != nil || err2 != nil {
			continue
		}
		out[i].Age = max(time.Duration(ms-int64(first.MS))*time.Millisecond, 0)
	}
	if ok == 0 {
		return out, lastErr
	}
	return out, nil
}
