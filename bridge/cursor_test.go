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
	for _, s := range []string{"", "abc-1-0", "k3j2a9-1732233000000-7", "a-0-0", "-", "a--", "zz-18446744073709551615-18446744073709551615"} {
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
