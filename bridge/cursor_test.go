package bridge_test

import (
	"errors"
	"testing"

	"github.com/hookwire/hookwire/bridge"
)

func TestParseCursor(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    bridge.Cursor
		wantErr error
	}{
		{"empty is zero", "", bridge.Cursor{}, nil},
		{"valid", "k3j2a9-1732233000000-7", bridge.Cursor{Epoch: "k3j2a9", MS: 1732233000000, Seq: 7}, nil},
		{"zero position", "abc-0-0", bridge.Cursor{Epoch: "abc"}, nil},
		{"no epoch", "-1-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"upper-case epoch", "ABC-1-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"epoch too long", "abcdefghijklmnopq-1-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"missing seq", "abc-1", bridge.Cursor{}, bridge.ErrBadCursor},
		{"leading zero", "abc-01-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"sign", "abc-+1-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"overflow", "abc-18446744073709551616-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"extra part", "abc-1-0-0", bridge.Cursor{}, bridge.ErrBadCursor},
		{"redis special", "abc-$", bridge.Cursor{}, bridge.ErrBadCursor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bridge.ParseCursor(tt.in)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseCursor(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("ParseCursor(%q).String() = %q", tt.in, got.String())
			}
		})
	}
}

func TestCursorOrder(t *testing.T) {
	a := bridge.Cursor{Epoch: "e", MS: 5, Seq: 1}
	b := bridge.Cursor{Epoch: "e", MS: 5, Seq: 2}
	c := bridge.Cursor{Epoch: "e", MS: 6, Seq: 0}
	if !a.Before(b) || !b.Before(c) || c.Before(a) || a.Before(a) {
		t.Errorf("order of %v %v %v is wrong", a, b, c)
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "abc-1-0", "k3j2a9-1732233000000-7", "a-0-0", "-", "a--", "zz-18446744073709551615-18446744073709551615",
		vectorOf(2).Cursor().String(), vectorOf(16).Cursor().String(), vectorOf(32).At(3, 1796226986153, 4).String(), "v1.", "v1.AA", "v1.AQAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := bridge.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, bridge.ErrBadCursor) {
				t.Fatalf("error %v does not wrap ErrBadCursor", err)
			}
			return
		}
		// Every cursor has exactly one string form.
		if c.String() != s {
			t.Fatalf("ParseCursor(%q).String() = %q", s, c.String())
		}
	})
}

// vectorOf returns the cursor of a vector of n partitions at realistic
// positions.
func vectorOf(n int) *bridge.Vector {
	pos := make([]bridge.PartPos, n)
	for i := range pos {
		pos[i] = bridge.PartPos{Epoch: bridge.EpochSum("epoch" + string(rune('a'+i))), MS: 1796226986153 + uint64(i)*1000, Seq: uint64(i)}
	}
	return bridge.NewVector(pos)
}

func TestVectorCursor(t *testing.T) {
	v := vectorOf(16)
	c := v.At(5, 1796226999999, 3)
	s := c.String()
	got, err := bridge.ParseCursor(s)
	if err != nil {
		t.Fatalf("ParseCursor(%q): %v", s, err)
	}
	if got.Partitions() != 16 || got.String() != s {
		t.Fatalf("round trip: %d partitions, %q", got.Partitions(), got.String())
	}
	for p := range 16 {
		if got.Pos(p) != c.Pos(p) {
			t.Errorf("partition %d: %+v, want %+v", p, got.Pos(p), c.Pos(p))
		}
	}
	if c.Pos(5).MS != 1796226999999 || c.Pos(5).Seq != 3 || c.Part() != 5 {
		t.Errorf("own position %+v part %d", c.Pos(5), c.Part())
	}
	// Covering: the vector covers an event in partition 5 at or before
	// its own position there, not one after it or of another epoch.
	ev := func(ms, seq uint64) bridge.Cursor { return v.At(5, ms, seq) }
	if got.Before(ev(1796226999999, 3)) || !got.Before(ev(1796226999999, 4)) {
		t.Error("Before does not compare the event's own partition")
	}
	other := bridge.NewVector(append(v.Cursor().Positions()[:5:5], append([]bridge.PartPos{{Epoch: 7, MS: 1, Seq: 0}}, v.Cursor().Positions()[6:]...)...))
	if !got.Before(other.At(5, 1, 0)) {
		t.Error("an event of another epoch counts as covered")
	}
	// The longest realistic cursor: 32 partitions, some idle for a
	// year, sequence numbers in the thousands.
	pos := make([]bridge.PartPos, bridge.MaxPartitions)
	for i := range pos {
		pos[i] = bridge.PartPos{Epoch: ^uint32(0), MS: 1796226986153 - uint64(i%2)*365*24*3600*1000, Seq: 16383}
	}
	if n := len(bridge.NewVector(pos).Cursor().String()); n > bridge.MaxCursorLen {
		t.Errorf("a cursor of %d partitions is %d bytes, more than %d", len(pos), n, bridge.MaxCursorLen)
	}
}
