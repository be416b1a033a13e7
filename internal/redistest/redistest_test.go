package redistest

import (
	"strings"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     []Option
		wantKept bool
	}{
		{"empty after restart", nil, false},
		{"append only keeps data", []Option{WithAppendOnly()}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts...)
			if strings.HasSuffix(s.Addr(), ":6379") || !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
				t.Fatalf("Addr %q URL %q", s.Addr(), s.URL())
			}
			rdb := s.Client(t)
			if err := rdb.Set(t.Context(), "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			s.Kill()
			if err := rdb.Ping(t.Context()).Err(); err == nil {
				t.Fatal("PING answered after Kill")
			}
			s.Restart()
			n, err := rdb.Exists(t.Context(), "k").Result()
			if err != nil {
				t.Fatalf("EXISTS after restart: %v", err)
			}
			if kept := n == 1; kept != tt.wantKept {
				t.Errorf("key kept across restart = %v, want %v", kept, tt.wantKept)
			}
		})
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3, 0)
	rdb := c.Client(t)
	for i := range 20 {
		k := "k" + strings.Repeat("x", i)
		if err := rdb.Set(t.Context(), k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	if n := len(c.Primaries(t)); n != 3 {
		t.Errorf("%d primaries, want 3", n)
	}
	p := c.PrimaryOf(t, "k")
	if got := p.Client(t).Get(t.Context(), "k").Val(); got != "v" {
		t.Errorf("GET k on its primary %s = %q", p.Addr(), got)
	}
}
