package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hookwire/hookwire/internal/syncbuf"
)

const (
	smokeKey    = "bench-smoke-key-0123456789"
	smokeSecret = "bench-smoke-secret-0123456789abcdef0123"
)

// listenRE finds the bound address in the JSON or text log line, whatever
// attributes sit between msg and addr.
var listenRE = regexp.MustCompile(`"msg":"hookwire listening".*?"addr":"([^"]+)"|msg="hookwire listening".*? addr=(\S+)`)

// TestSmoke builds hookwire, starts `hookwire serve --dev` on a free
// loopback port and runs every scenario for about two seconds with tiny
// parameters, through run as the command would.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a server")
	}
	bin := filepath.Join(t.TempDir(), "hookwire")
	if out, err := exec.Command("go", "build", "-o", bin, "../hookwire").CombinedOutput(); err != nil {
		t.Fatalf("go build ../hookwire: %v\n%s", err, out)
	}
	url, pid := startServer(t, bin)

	common := []string{"--url", url, "--api-key", smokeKey, "--jwt-secret", smokeSecret,
		"--duration", "2s", "--server-pid", strconv.Itoa(pid)}
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, r map[string]any)
	}{
		{"idle", []string{"idle", "--conns", "50", "--open-rate", "500"}, func(t *testing.T, r map[string]any) {
			want(t, r, "conns_established", 50)
			want(t, r, "conns_failed", 0)
			want(t, r, "conns_dropped", 0)
			positive(t, r, "server_rss_after_bytes")
		}},
		{"personal", []string{"personal", "--users", "50", "--rate", "100"}, deliveryChecks},
		{"broadcast", []string{"broadcast", "--subscribers", "50", "--rate", "10"}, deliveryChecks},
		{"ingest-single", []string{"ingest", "--publishers", "4"}, ingestChecks},
		{"ingest-batch", []string{"ingest", "--publishers", "4", "--batch", "100"}, ingestChecks},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := run(ctx, append(c.args, common...), &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
			if len(lines) != 1 {
				t.Fatalf("want one JSON line, got %d:\n%s", len(lines), stdout.String())
			}
			var r map[string]any
			if err := json.Unmarshal(lines[0], &r); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, lines[0])
			}
			t.Logf("%s", lines[0])
			if r["scenario"] != c.args[0] {
				t.Errorf("scenario = %v", r["scenario"])
			}
			for _, k := range []string{"params", "measured_s", "server_cpu_s", "server_rss_bytes", "go_version", "gomaxprocs"} {
				if r[k] == nil {
					t.Errorf("%s missing", k)
				}
			}
			if w, ok := r["warnings"]; ok {
				t.Errorf("warnings: %v\n%s", w, stderr.String())
			}
			c.check(t, r)
		})
	}
}

func deliveryChecks(t *testing.T, r map[string]any) {
	want(t, r, "conns_failed", 0)
	want(t, r, "lost", 0)
	want(t, r, "misrouted", 0)
	want(t, r, "duplicated", 0)
	want(t, r, "foreign_frames", 0)
	positive(t, r, "deliveries")
	positive(t, r, "events_accepted")
	positive(t, r, "accepted_per_server_cpu_s")
	if r["deliveries"] != r["expected_deliveries"] {
		t.Errorf("deliveries %v of %v", r["deliveries"], r["expected_deliveries"])
	}
	if l, _ := r["latency"].(map[string]any); l == nil || l["p99_ms"] == nil {
		t.Errorf("latency = %v", r["latency"])
	}
}

func ingestChecks(t *testing.T, r map[string]any) {
	want(t, r, "errors", 0)
	positive(t, r, "events_accepted")
	positive(t, r, "accepted_per_server_cpu_s")
	if r["event_errors_by_status"] != nil {
		t.Errorf("event errors: %v", r["event_errors_by_status"])
	}
}

func want(t *testing.T, r map[string]any, k string, v float64) {
	t.Helper()
	if got, ok := r[k].(float64); !ok || got != v {
		t.Errorf("%s = %v, want %v", k, r[k], v)
	}
}

func positive(t *testing.T, r map[string]any, k string) {
	t.Helper()
	if got, ok := r[k].(float64); !ok || got <= 0 {
		t.Errorf("%s = %v, want > 0", k, r[k])
	}
}

// startServer runs `hookwire serve --dev` on a free loopback port and
// returns its base URL and pid.
func startServer(t *testing.T, bin string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--dev", "--listen", "127.0.0.1:0")
	// A benchmark measures the server, not its abuse limits: publish and
	// upgrade rates are unlimited (variables an older server ignores).
	cmd.Env = append(os.Environ(), "HOOKWIRE_API_KEYS="+smokeKey, "HOOKWIRE_JWT_SECRET="+smokeSecret, "HOOKWIRE_REDIS_URL=",
		"HOOKWIRE_PUBLISH_RATE=0", "HOOKWIRE_UPGRADE_RATE=0")
	var logs syncbuf.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(&logs, pw)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			l := logs.String()
			if len(l) > 4000 {
				l = "…" + l[len(l)-4000:]
			}
			t.Logf("server log (end):\n%s", l)
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1] + m[2]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		return "http://" + a, cmd.Process.Pid
	case <-exited:
		t.Fatalf("server exited: %s", logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start: %s", logs.String())
	}
	return "", 0
}
