package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadCursor is returned by ParseCursor for a string that is not a cursor.
var ErrBadCursor = errors.New("malformed cursor")

// A Cursor is the position of one event in the stream of one broker epoch.
//
// Within an epoch cursors are totally ordered by (MS, Seq), the broker's
// entry ID. The epoch changes whenever the broker lost its history (Redis
// restarted empty, failed over to a replica that lacked it): a cursor of an
// older epoch can never be resumed, which lets the server tell "nothing
// missed" from "history gone". Its string form "<epoch>-<ms>-<seq>" is opaque
// to clients.
type Cursor struct {
	Epoch string
	MS    uint64
	Seq   uint64
}

// IsZero reports whether c is the zero cursor (no position).
func (c Cursor) IsZero() bool { return c == Cursor{} }

// String returns the wire form of c, or "" for the zero cursor.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return c.Epoch + "-" + strconv.FormatUint(c.MS, 10) + "-" + strconv.FormatUint(c.Seq, 10)
}

// ID returns the broker entry ID "<ms>-<seq>".
func (c Cursor) ID() string {
	return strconv.FormatUint(c.MS, 10) + "-" + strconv.FormatUint(c.Seq, 10)
}

// Before reports whether c is before d. Both must belong to the same epoch.
func (c Cursor) Before(d Cursor) bool {
	return c.MS < d.MS || (c.MS == d.MS && c.Seq < d.Seq)
}

// MaxEpochLen is the longest epoch a cursor may carry.
const MaxEpochLen = 16

// ParseCursor parses the wire form of a cursor. The empty string is the zero
// cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	epoch, rest, ok := strings.Cut(s, "-")
	if !ok || !validEpoch(epoch) {
		return Cursor{}, fmt.Errorf("%w: %q", ErrBadCursor, truncate(s))
	}
	id, err := ParseID(rest)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %q", ErrBadCursor, truncate(s))
	}
	id.Epoch = epoch
	return id, nil
}

// ParseID parses a broker entry ID "<ms>-<seq>" into a cursor without epoch.
func ParseID(s string) (Cursor, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return Cursor{}, ErrBadCursor
	}
	m, err1 := parseDecimal(ms)
	q, err2 := parseDecimal(seq)
	if err1 != nil || err2 != nil {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{MS: m, Seq: q}, nil
}

// parseDecimal accepts only canonical decimal numbers: no sign, no leading
// zeros, so that every cursor has exactly one string form.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, ErrBadCursor
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrBadCursor
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// NewEpoch returns a fresh epoch: 10 random characters of [0-9a-z]. Stream
// adapters call it when the broker has no history.
func NewEpoch() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 0, 10)
	var buf [16]byte
	for len(b) < cap(b) {
		rand.Read(buf[:])
		for _, x := range buf {
			// 252 = 7*36: reject the rest to keep the draw uniform.
			if x < 252 && len(b) < cap(b) {
				b = append(b, alphabet[x%36])
			}
		}
	}
	return string(b)
}

func validEpoch(e string) bool {
	if e == "" || len(e) > MaxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
