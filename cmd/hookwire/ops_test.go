package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/internal/syncbuf"
)

// TestServerPingsAndClosesSilentPeers: the server pings every
// HOOKWIRE_PING_INTERVAL; a peer that answers stays, one silent for two
// intervals is closed.
func TestServerPingsAndClosesSilentPeers(t *testing.T) {
	const every = 300 * time.Millisecond
	p := serveInProcess(t, memEnv("HOOKWIRE_PING_INTERVAL="+every.String()))
	dial := func(answer bool) (*websocket.Conn, *atomic.Int32, chan error) {
		ws, _, err := websocket.DefaultDialer.Dial(p.wsURL("token="+subToken(t, "42")), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		pings := new(atomic.Int32)
		ws.SetPingHandler(func(data string) error {
			pings.Add(1)
			if !answer {
				return nil // silent: no pong
			}
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		ended := make(chan error, 1)
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					ended <- err
					return
				}
			}
		}()
		return ws, pings, ended
	}
	start := time.Now()
	_, silentPings, silentEnded := dial(false)
	_, pings, ended := dial(true)

	select {
	case err := <-silentEnded:
		d := time.Since(start)
		t.Logf("silent peer closed after %v (%d pings): %v", d, silentPings.Load(), err)
		if d < 2*every-50*time.Millisecond || d > 2*every+3*time.Second {
			t.Errorf("silent peer closed after %v, want about two intervals (%v)", d, 2*every)
		}
		if silentPings.Load() == 0 {
			t.Error("the silent peer closed without a ping first")
		}
	case <-time.After(2*every + 3*time.Second):
		t.Fatal("silent peer still open")
	}
	select {
	case err := <-ended:
		t.Fatalf("the peer answering pings was closed: %v", err)
	case <-time.After(time.Until(start.Add(5 * every))):
	}
	if n := pings.Load(); n < 3 {
		t.Errorf("%d pings in %v at one per %v", n, 5*every, every)
	}
}

// TestTrustedProxies: behind a proxy listed in HOOKWIRE_TRUSTED_PROXIES the
// X-Forwarded-For entry is the client IP (each client has its own upgrade
// budget); from any other peer the header is ignored.
func TestTrustedProxies(t *testing.T) {
	upgrade := func(p *inProcess, xff string) int {
		t.Helper()
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(p.wsURL("token="+subToken(t, "42")), h)
		if err == nil {
			ws.Close()
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	trusted := serveInProcess(t, memEnv("HOOKWIRE_UPGRADE_RATE=1", "HOOKWIRE_TRUSTED_PROXIES=127.0.0.0/8"))
	got := []int{upgrade(trusted, "203.0.113.1"), upgrade(trusted, "203.0.113.2"), upgrade(trusted, "203.0.113.1")}
	if got[0] != 101 || got[1] != 101 || got[2] != 429 {
		t.Errorf("behind a trusted proxy, clients .1, .2, .1: %v, want [101 101 429]", got)
	}
	// An upgraded request is logged when its connection ends, which is after
	// the client's close: wait for the line rather than race it.
	logged := func() bool { return strings.Contains(trusted.stderr.String(), `"remote_ip":"203.0.113.2"`) }
	for deadline := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !logged() {
		t.Errorf("the request log does not name the forwarded client IP:\n%s", trusted.stderr.String())
	}
	direct := serveInProcess(t, memEnv("HOOKWIRE_UPGRADE_RATE=1"))
	got = []int{upgrade(direct, "203.0.113.1"), upgrade(direct, "203.0.113.2")}
	if got[0] != 101 || got[1] != 429 {
		t.Errorf("without trusted proxies, forged X-Forwarded-For .1, .2: %v, want [101 429] (one peer, one budget)", got)
	}
	// A bad CIDR is refused when serve starts, naming the variable.
	cfg, err := parseServe([]string{"--listen", "127.0.0.1:0", "--trusted-proxies", "10.0.0.0/33"}, memEnvGetenv(), &syncbuf.Buffer{})
	if err == nil {
		err = serve(t.Context(), cfg, &syncbuf.Buffer{}, &syncbuf.Buffer{}, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "HOOKWIRE_TRUSTED_PROXIES") {
		t.Errorf("a bad CIDR: %v, want an error naming HOOKWIRE_TRUSTED_PROXIES", err)
	}
}

// TestSecretsFromFiles: HOOKWIRE_JWT_SECRET_FILE and
// HOOKWIRE_WEBHOOK_SECRET_FILE supply the secrets (trimmed); they are never
// logged; a missing file is an error naming the variable.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	jwtFile, hookFile := filepath.Join(dir, "jwt"), filepath.Join(dir, "webhook")
	whsec := auth.NewWebhookSecret()
	if err := os.WriteFile(jwtFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hookFile, []byte(" "+whsec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := serveInProcess(t, []string{
		"HOOKWIRE_API_KEYS=" + testAPIKey, "HOOKWIRE_JWT_SECRET_FILE=" + jwtFile, "HOOKWIRE_WEBHOOK_SECRET_FILE=" + hookFile,
		"HOOKWIRE_LOG_LEVEL=debug", "HOOKWIRE_DRAIN_TIMEOUT=1s",
	})
	ws, resp, err := websocket.DefaultDialer.Dial(p.wsURL("token="+subToken(t, "42")), nil)
	if err != nil {
		t.Fatalf("token signed with the file's secret: %v %v", err, resp)
	}
	defer ws.Close()
	body := `{"id":"from-file","type":"t","users":["42"]}`
	req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/events", strings.NewReader(body))
	req.Header = hostileSigned(t, whsec, "msg_1", time.Now(), body)
	req.Header.Set("Content-Type", "application/json")
	if resp, b := hostileDo(t, req); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST signed with the file's webhook secret = %d %s", resp.StatusCode, b)
	}
	for _, secret := range []string{testSecret, whsec, strings.TrimPrefix(whsec, "whsec_")} {
		if strings.Contains(p.stderr.String()+p.stdout.String(), secret) {
			t.Errorf("a secret from a file is in the output")
		}
	}
	_, err = parseServe(nil, func(k string) string {
		return map[string]string{"HOOKWIRE_API_KEYS": testAPIKey, "HOOKWIRE_JWT_SECRET_FILE": filepath.Join(dir, "absent")}[k]
	}, &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "HOOKWIRE_JWT_SECRET_FILE") {
		t.Errorf("a missing secret file: %v, want an error naming HOOKWIRE_JWT_SECRET_FILE", err)
	}
}

// TestTailSince: `hookwire tail --since C` prints the retained events after
// C, then the live ones.
func TestTailSince(t *testing.T) {
	p := serveInProcess(t, memEnv())
	var cursors []string
	for _, id := range []string{"t1", "t2", "t3"} {
		req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/events", strings.NewReader(`{"id":"`+id+`","type":"t","users":["42"]}`))
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, b := hostileDo(t, req)
		var a struct{ Cursor string }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
			t.Fatalf("POST %s = %d %s", id, resp.StatusCode, b)
		}
		cursors = append(cursors, a.Cursor)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tail", "--url", p.base, "--token", subToken(t, "42"), "--since", cursors[0]}, func(string) string { return "" }, pw, &syncbuf.Buffer{})
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var got []string
	for len(got) < 3 && lines.Scan() {
		var f struct{ Type, ID string }
		if err := json.Unmarshal(lines.Bytes(), &f); err != nil {
			t.Fatalf("tail printed %q: %v", lines.Text(), err)
		}
		got = append(got, f.Type+":"+f.ID)
	}
	want := []string{"welcome:", "event:t2", "event:t3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tail --since <t1's cursor> printed %v, want %v", got, want)
	}
	cancel()
	go func() {
		for lines.Scan() {
		}
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("tail ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("tail did not end when its context did")
	}
}

// TestReplicasGetACleanEnvironment: a replica started by a test does not
// see the HOOKWIRE_* and OTEL_* variables of the test's own environment.
func TestReplicasGetACleanEnvironment(t *testing.T) {
	t.Setenv("HOOKWIRE_PUBLISH_RATE", "not a number")
	t.Setenv("OTEL_TRACES_EXPORTER", "bogus")
	for _, kv := range replicaEnv("HOOKWIRE_X=1") {
		if (strings.HasPrefix(kv, "HOOKWIRE_") && kv != "HOOKWIRE_X=1") || strings.HasPrefix(kv, "OTEL_") {
			t.Errorf("replica environment has %s", kv)
		}
	}
	startReplica(t, []string{"HOOKWIRE_API_KEYS=" + testAPIKey, "HOOKWIRE_JWT_SECRET=" + testSecret})
}
