package client

import (
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
