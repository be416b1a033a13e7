package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
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
//
// A broker with several partitions (Redis Cluster) gives vector cursors
// instead: one position per partition (see PartPos), so that one cursor
// resumes a connection's whole view whatever partitions it reads. For an
// event, MS and Seq are its own entry ID in its own partition, and the
// vector holds where the reader that delivered it was in every other
// partition, each position with its partition's epoch; Epoch is "v" (the
// epochs are compared per partition, by Before). Their string form is
// "v1." followed by base64url of a compact binary encoding.
type Cursor struct {
	Epoch string
	MS    uint64
	Seq   uint64

	part int32   // 1 + the event's own partition in vec; 0: none
	vec  *Vector // nil for a single-partition cursor
}

// MaxCursorLen is the longest wire form of a cursor (CONTRACT.md §3).
const MaxCursorLen = 512

// MaxPartitions is the most partitions a vector cursor carries: the wire
// form of 32 partitions stays within MaxCursorLen (about 12 bytes each).
const MaxPartitions = 32

// PartPos is a position in one partition: the digest of the partition's
// epoch (EpochSum; 0 when the partition had none) and an entry ID.
type PartPos struct {
	Epoch   uint32
	MS, Seq uint64
}

// Before reports whether p is before q (entry IDs only).
func (p PartPos) Before(q PartPos) bool {
	return p.MS < q.MS || (p.MS == q.MS && p.Seq < q.Seq)
}

// EpochSum is the 32-bit digest of an epoch that vector cursors carry;
// never 0 for a non-empty epoch.
func EpochSum(epoch string) uint32 {
	if epoch == "" {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(epoch))
	return max(h.Sum32(), 1)
}

// A Vector is an immutable list of per-partition positions.
type Vector struct {
	pos []PartPos
}

// VectorEpoch is the Epoch of every vector cursor.
const VectorEpoch = "v"

// NewVector returns a vector of a copy of pos.
func NewVector(pos []PartPos) *Vector {
	return &Vector{pos: append([]PartPos(nil), pos...)}
}

// Len returns the number of partitions of v.
func (v *Vector) Len() int { return len(v.pos) }

// Cursor returns the cursor of v itself (no own event).
func (v *Vector) Cursor() Cursor { return Cursor{Epoch: VectorEpoch, vec: v} }

// At returns the cursor of the event with entry ID ms-seq in partition
// part, delivered when every other partition was at v's position.
func (v *Vector) At(part int, ms, seq uint64) Cursor {
	return Cursor{Epoch: VectorEpoch, MS: ms, Seq: seq, part: int32(part) + 1, vec: v}
}

// Partitions returns the number of partitions of a vector cursor, 0 for a
// single-partition cursor.
func (c Cursor) Partitions() int {
	if c.vec == nil {
		return 0
	}
	return len(c.vec.pos)
}

// Pos returns c's position in partition p of a vector cursor; for a
// single-partition cursor, its one position.
func (c Cursor) Pos(p int) PartPos {
	if c.vec == nil {
		return PartPos{Epoch: EpochSum(c.Epoch), MS: c.MS, Seq: c.Seq}
	}
	pos := c.vec.pos[p]
	if int(c.part)-1 == p {
		pos.MS, pos.Seq = c.MS, c.Seq
	}
	return pos
}

// Part returns the own partition of an event's vector cursor, or -1.
func (c Cursor) Part() int { return int(c.part) - 1 }

// Positions returns every partition's position of a vector cursor.
func (c Cursor) Positions() []PartPos {
	if c.vec == nil {
		return nil
	}
	out := make([]PartPos, len(c.vec.pos))
	for i := range out {
		out[i] = c.Pos(i)
	}
	return out
}

// IsZero reports whether c is the zero cursor (no position).
func (c Cursor) IsZero() bool { return c == Cursor{} }

// String returns the wire form of c, or "" for the zero cursor.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	if c.vec != nil {
		return c.vectorString()
	}
	return c.Epoch + "-" + strconv.FormatUint(c.MS, 10) + "-" + strconv.FormatUint(c.Seq, 10)
}

// ID returns the broker entry ID "<ms>-<seq>".
func (c Cursor) ID() string {
	return strconv.FormatUint(c.MS, 10) + "-" + strconv.FormatUint(c.Seq, 10)
}

// Before reports whether c is before d. Both must belong to the same epoch.
// For vector cursors: when d is an event's cursor, whether d's event is
// after c's position in its partition, or of another epoch there (so c
// does not cover it); else whether d is after c in any partition.
func (c Cursor) Before(d Cursor) bool {
	if c.vec == nil && d.vec == nil {
		return c.MS < d.MS || (c.MS == d.MS && c.Seq < d.Seq)
	}
	if c.vec == nil || d.vec == nil || len(c.vec.pos) != len(d.vec.pos) {
		return true
	}
	before := func(p int) bool {
		cp, dp := c.Pos(p), d.Pos(p)
		return cp.Epoch != dp.Epoch || cp.Before(dp)
	}
	if p := d.Part(); p >= 0 {
		return before(p)
	}
	for p := range d.vec.pos {
		if before(p) {
			return true
		}
	}
	return false
}

// MaxEpochLen is the longest epoch a cursor may carry.
const MaxEpochLen = 16

// ParseCursor parses the wire form of a cursor. The empty string is the zero
// cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	if strings.HasPrefix(s, vectorPrefix) {
		return parseVector(s)
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

const vectorPrefix = "v1."

var b64 = base64.RawURLEncoding

// vectorString encodes a vector cursor: uvarint n, uvarint base (the
// smallest non-zero ms), then per partition its epoch digest (4 bytes,
// little endian), uvarint ms-base+1 (0 for ms 0) and uvarint seq.
func (c Cursor) vectorString() string {
	n := len(c.vec.pos)
	var base uint64
	for p := range n {
		if ms := c.Pos(p).MS; ms != 0 && (base == 0 || ms < base) {
			base = ms
		}
	}
	buf := make([]byte, 0, 12+n*12)
	buf = binary.AppendUvarint(buf, uint64(n))
	buf = binary.AppendUvarint(buf, base)
	for p := range n {
		pos := c.Pos(p)
		buf = binary.LittleEndian.AppendUint32(buf, pos.Epoch)
		if pos.MS == 0 {
			buf = append(buf, 0)
		} else {
			buf = binary.AppendUvarint(buf, pos.MS-base+1)
		}
		buf = binary.AppendUvarint(buf, pos.Seq)
	}
	return vectorPrefix + b64.EncodeToString(buf)
}

// parseVector parses the wire form of a vector cursor, accepting only the
// canonical encoding (every cursor has one string form).
func parseVector(s string) (Cursor, error) {
	bad := func() (Cursor, error) { return Cursor{}, fmt.Errorf("%w: %q", ErrBadCursor, truncate(s)) }
	if len(s) > MaxCursorLen {
		return bad()
	}
	buf, err := b64.DecodeString(s[len(vectorPrefix):])
	if err != nil {
		return bad()
	}
	r := buf
	uv := func() (uint64, bool) {
		x, k := binary.Uvarint(r)
		if k <= 0 {
			return 0, false
		}
		r = r[k:]
		return x, true
	}
	n, ok1 := uv()
	base, ok2 := uv()
	if !ok1 || !ok2 || n < 1 || n > MaxPartitions {
		return bad()
	}
	pos := make([]PartPos, n)
	for p := range pos {
		if len(r) < 4 {
			return bad()
		}
		pos[p].Epoch = binary.LittleEndian.Uint32(r)
		r = r[4:]
		d, ok1 := uv()
		seq, ok2 := uv()
		if !ok1 || !ok2 || (d != 0 && d-1 > ^uint64(0)-base) {
			return bad()
		}
		if d != 0 {
			pos[p].MS = base + d - 1
		}
		pos[p].Seq = seq
	}
	if len(r) != 0 {
		return bad()
	}
	c := NewVector(pos).Cursor()
	if c.String() != s {
		return bad()
	}
	return c, nil
}
