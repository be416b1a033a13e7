package redisstream

import (
	"context"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

// lagCap bounds how many unread entries Lag counts.
const lagCap = 1000

// Lag reports how far this replica's Tail is behind the stream: the number
// of entries appended but not yet read (counted up to 1000; more reads as
// 1000), and the age of the oldest of them (zero when caught up). It
// returns zeros before Tail has read its position.
func (s *Stream) Lag(ctx context.Context) (entries int64, age time.Duration, err error) {
	last := s.position.Load()
	if last == nil {
		return 0, 0, nil
	}
	pipe := s.rdb.Pipeline()
	unread := pipe.XRangeN(ctx, s.events, "("+*last, "+", lagCap)
	now := pipe.Time(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, unavailable("lag of "+s.events, err)
	}
	msgs := unread.Val()
	if len(msgs) == 0 {
		return 0, 0, nil
	}
	first, err := bridge.ParseID(msgs[0].ID)
	if err != nil {
		return int64(len(msgs)), 0, nil
	}
	age = now.Val().Sub(time.UnixMilli(int64(first.MS)))
	return int64(len(msgs)), max(age, 0), nil
}
