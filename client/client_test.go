package client

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestBackoffIsFullJitterWithinTheCap(t *testing.T) {
	c := New(Options{URLs: []string{"http://127.0.0.1:1"}, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	for attempt := range 40 {
		ceil := min(time.Second, 100*time.Millisecond<<min(attempt, 30))
		var maxSeen time.Duration
		for range 200 {
			d := c.backoff(attempt)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", attempt, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil/2 {
			t.Errorf("attempt %d: delays never came near the ceiling %v (max %v): not full jitter", attempt, ceil, maxSeen)
		}
	}
}

func TestWSURL(t *testing.T) {
	tests := map[string]string{
		"http://localhost:8080":         "ws://localhost:8080/v1/ws",
		"https://push.example.com/":     "wss://push.example.com/v1/ws",
		"ws://127.0.0.1:9/v1/ws":        "ws://127.0.0.1:9/v1/ws",
		"https://example.com/hookwire/": "wss://example.com/hookwire/v1/ws",
	}
	for in, want := range tests {
		u, err := wsURL(in)
		if err != nil || u.String() != want {
			t.Errorf("wsURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	if _, err := wsURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}

func TestDedupeIsBounded(t *testing.T) {
	var got []string
	c := New(Options{URLs: []string{"http://x"}, Remember: 3, OnEvent: func(ev Event) { got = append(got, ev.ID) }})
	for _, id := range []string{"a", "b", "a", "c", "d", "a"} {
		c.deliver(Event{ID: id, Cursor: "e-1-" + id})
	}
	// "a" is forgotten after three newer ids, so its last repeat passes.
	if want := []string{"a", "b", "c", "d", "a"}; len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if c.Cursor() != "e-1-a" {
		t.Errorf("cursor %q", c.Cursor())
	}
	if len(c.seen) > 3 || len(c.order) > 3 {
		t.Errorf("remembers %d ids, want at most 3", len(c.seen))
	}
}

// FuzzParseFrame: any bytes a server (or something in its place) sends are
// either refused with an error or parsed; a parsed frame has a type, an
// event frame an id and a cursor, and what was parsed is what the JSON
// says.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"welcome","user":"42","conn":"c1","cursor":"1-0"}`,
		`{"type":"event","id":"e1","cursor":"2-0","event":"balance.updated","data":{"balance":"10.00"},"time":"2026-11-22T00:00:00Z"}`,
		`{"type":"event","id":"","cursor":"2-0"}`,
		`{"type":"reset","reason":"history_expired","cursor":"9-0"}`,
		`{"type":"error","code":"bad_request","message":"unknown op","ref":"4"}`,
		`{"type":"event","id":"e1","cursor":"c","time":"not a time"}`,
		`{"type":1}`, `[]`, `null`, ``, `{"type":"event","data":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			return
		}
		var m map[string]any
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			t.Fatalf("parsed %q, which is not a JSON object: %v", b, jerr)
		}
		// encoding/json matches member names without regard to case.
		says := func(name, v string) bool {
			for k, mv := range m {
				if strings.EqualFold(k, name) && mv == v {
					return true
				}
			}
			return false
		}
		if fr.Type == "" || !says("type", fr.Type) {
			t.Fatalf("%q: type %q, not what the JSON says", b, fr.Type)
		}
		if fr.Type == "event" {
			if fr.Event.ID == "" || fr.Event.Cursor == "" || !says("id", fr.Event.ID) || !says("cursor", fr.Event.Cursor) {
				t.Fatalf("%q: event %+v", b, fr.Event)
			}
			if fr.Cursor != fr.Event.Cursor {
				t.Fatalf("%q: frame cursor %q, event cursor %q", b, fr.Cursor, fr.Event.Cursor)
			}
		}
	})
}
