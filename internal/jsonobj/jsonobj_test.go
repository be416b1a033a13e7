package jsonobj

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestWalk(t *testing.T) {
	errMember := errors.New("member says no")
	tests := []struct {
		name     string
		in       string
		names    []string // the member names seen
		wantKind Kind     // 0: no *Error
		wantErr  error    // a member's error, returned as it is
		reason   string   // part of the Reason
	}{
		{name: "object", in: ` {"a":1,"b":[2],"a":"x"} `, names: []string{"a", "b", "a"}},
		{name: "empty object", in: `{}`},
		{name: "empty", in: ``, wantKind: Empty, reason: "the body is empty"},
		{name: "blank", in: " \n\t", wantKind: Empty},
		{name: "array", in: `[1]`, wantKind: NotObject},
		{name: "string", in: `"x"`, wantKind: NotObject},
		{name: "null", in: `null`, wantKind: NotObject},
		{name: "cut short", in: `{"a":1`, names: []string{"a"}, wantKind: Malformed, reason: "unexpected end of body"},
		{name: "bad token", in: `{"a":1,}`, names: []string{"a"}, wantKind: Malformed, reason: "malformed JSON at byte"},
		{name: "not JSON", in: `{a}`, wantKind: Malformed},
		{name: "trailing object", in: `{}{}`, wantKind: Trailing},
		{name: "trailing garbage", in: `{} x`, wantKind: Trailing},
		{name: "member error", in: `{"a":1,"stop":2,"c":3}`, names: []string{"a", "stop"}, wantErr: errMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tt.in))
			var names []string
			err := Walk(dec, func(name string) error {
				names = append(names, name)
				if name == "stop" {
					return errMember
				}
				var v json.RawMessage
				if err := dec.Decode(&v); err != nil {
					return Syntax(err)
				}
				return nil
			})
			if strings.Join(names, ",") != strings.Join(tt.names, ",") {
				t.Errorf("members %q, want %q", names, tt.names)
			}
			var je *Error
			gotKind := Kind(0)
			if errors.As(err, &je) {
				gotKind = je.Kind
			}
			switch {
			case tt.wantErr != nil:
				if err != tt.wantErr {
					t.Errorf("Walk(%q) = %v, want the member's error itself", tt.in, err)
				}
			case gotKind != tt.wantKind || (tt.wantKind == 0) != (err == nil):
				t.Errorf("Walk(%q) = %v (kind %d), want kind %d", tt.in, err, gotKind, tt.wantKind)
			case tt.reason != "" && !strings.Contains(je.Reason, tt.reason):
				t.Errorf("Walk(%q) reason %q, want it to say %q", tt.in, je.Reason, tt.reason)
			}
		})
	}
}

// Syntax never quotes the input.
func TestSyntaxDoesNotEcho(t *testing.T) {
	const secret = "sk_live_do_not_echo"
	var v any
	err := json.NewDecoder(bytes.NewReader([]byte(`{"k": ` + secret + `}`))).Decode(&v)
	if err == nil {
		t.Fatal("decoded")
	}
	if got := Syntax(err); got.Kind != Malformed || strings.Contains(got.Reason, secret) || strings.Contains(got.Reason, "sk_") {
		t.Errorf("Syntax = %+v", got)
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 16, "short"},
		{"exactly8", 8, "exactly8"},
		{"abcdefghij", 4, "abcd…"},
		{"ééé", 3, "é…"}, // 'é' is 2 bytes: no half rune
		{"日本語", 4, "日…"}, // 3-byte runes
		{"", 4, ""},
	}
	for _, tt := range tests {
		if got := Bound(tt.in, tt.max); got != tt.want {
			t.Errorf("Bound(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
