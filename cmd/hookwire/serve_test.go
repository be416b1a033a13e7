package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/internal/syncbuf"
)

// inProcess is a replica run by serve in the test's own process, on a free
// loopback port: for the tests where a separate process is not the point.
type inProcess struct {
	base   string // http://127.0.0.1:port
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	stop   context.CancelFunc
	done   chan struct{} // closed when serve has returned
	err    error         // serve's error, once done is closed
}

// serveInProcess parses args and env like `hookwire serve` and runs the
// replica until the test ends. Nothing is read from the process
// environment, except by the OpenTelemetry SDK, whose exporters read
// OTEL_* from it: those of env are also set there for the test (t.Setenv,
// so such a test cannot be parallel). Everything the replica logs is in
// stderr.
func serveInProcess(t *testing.T, env []string, args ...string) *inProcess {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
		if strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, v)
		}
	}
	if vars["HOOKWIRE_DRAIN_TIMEOUT"] == "" {
		vars["HOOKWIRE_DRAIN_TIMEOUT"] = "500ms" // the cleanup drains: keep it short
	}
	getenv := func(k string) string { return vars[k] }
	p := &inProcess{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	cfg, err := parseServe(append([]string{"--listen", "127.0.0.1:0"}, args...), getenv, p.stderr)
	if err != nil {
		t.Fatalf("serve %v: %v", args, err)
	}
	ctx, stop := context.WithCancel(t.Context())
	p.stop = stop
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		p.err = serve(ctx, cfg, p.stdout, p.stderr, func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.done:
		stop()
		t.Fatalf("serve ended: %v\n%s", p.err, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not listen:\n%s", p.stderr.String())
	}
	t.Cleanup(func() {
		p.shutdown(t)
		if t.Failed() {
			t.Logf("replica %s stderr:\n%s", p.base, p.stderr.String())
		}
	})
	return p
}

// shutdown ends p's context, as SIGTERM does for a process, and waits for
// serve to drain and return (at most 15 s), returning its error.
func (p *inProcess) shutdown(t *testing.T) error {
	t.Helper()
	p.stop()
	select {
	case <-p.done:
		return p.err
	case <-time.After(15 * time.Second):
		t.Error("serve did not return within 15s of its context's end")
		return nil
	}
}

// asReplica returns p as a *replica, for the helpers written for one
// (connect, post); it cannot be signalled.
func (p *inProcess) asReplica(t *testing.T) *replica {
	return &replica{t: t, base: p.base, stdout: p.stdout, stderr: p.stderr}
}

func (p *inProcess) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(p.base, "http") + "/v1/ws?" + query
}

// memEnv is a production configuration on the in-memory broker.
func memEnv(extra ...string) []string {
	return append([]string{
		"HOOKWIRE_API_KEYS=" + testAPIKey,
		"HOOKWIRE_JWT_SECRET=" + testSecret,
		"HOOKWIRE_DRAIN_TIMEOUT=1s",
	}, extra...)
}

// TestDrainRefusesUpgradesAtOnce: from the instant SIGTERM arrives, an
// upgrade gets 503 problem+json and /readyz 503, while the listener is
// still open (the not-ready window), and existing sockets stay until the
// drain closes them with 1001.
func TestDrainRefusesUpgradesAtOnce(t *testing.T) {
	r := startReplica(t, []string{"HOOKWIRE_API_KEYS=" + testAPIKey, "HOOKWIRE_JWT_SECRET=" + testSecret, "HOOKWIRE_DRAIN_TIMEOUT=5s"})
	s := r.connect(t, "token="+subToken(t, "42"))
	r.signal(syscall.SIGTERM)
	start := time.Now()
	for _, after := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond} {
		time.Sleep(time.Until(start.Add(after)))
		u := "ws" + strings.TrimPrefix(r.base, "http") + "/v1/ws?token=" + subToken(t, "43")
		ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil {
			ws.Close()
			t.Fatalf("%v after SIGTERM: upgraded, want 503", after)
		}
		if resp == nil {
			t.Fatalf("%v after SIGTERM: %v, want a 503 answer (the listener stays open)", after, err)
		}
		var p map[string]any
		derr := json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" || derr != nil || p["status"] != float64(503) {
			t.Errorf("%v after SIGTERM: upgrade = %d %q %v, want 503 problem+json", after, resp.StatusCode, resp.Header.Get("Content-Type"), p)
		}
		rr, err := http.Get(r.base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz %v after SIGTERM: %v", after, err)
		}
		rr.Body.Close()
		if rr.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz %v after SIGTERM = %d, want 503", after, rr.StatusCode)
		}
	}
	select {
	case err := <-s.closed:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("existing socket closed with %v, want 1001", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("existing socket not closed by the drain")
	}
}

// TestRateLimitsOffByDefault: with the defaults a backend posts three
// batches of 1000 events back to back, and one IP upgrades 150 times in a
// burst, without a single 429 (CONTRACT.md §1: both limits default to 0).
func TestRateLimitsOffByDefault(t *testing.T) {
	cfg, err := parseServe(nil, memEnvGetenv(), &syncbuf.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublishRate != 0 || cfg.UpgradeRate != 0 {
		t.Errorf("defaults: publish rate %v, upgrade rate %v, want 0 and 0", cfg.PublishRate, cfg.UpgradeRate)
	}
	p := serveInProcess(t, memEnv())
	evs := strings.TrimSuffix(strings.Repeat(`{"type":"t","users":["1"]},`, 1000), ",")
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/events/batch", strings.NewReader(`{"events":[`+evs+`]}`))
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, body := hostileDo(t, req)
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"status":429`) {
			t.Fatalf("batch %d of 1000 = %d %.200s, want 200 with every event accepted", i, resp.StatusCode, body)
		}
	}
	var wg sync.WaitGroup
	statuses := make([]int, 150)
	for i := range statuses {
		tok := subToken(t, fmt.Sprint("u", i))
		wg.Go(func() {
			ws, resp, err := websocket.DefaultDialer.Dial(p.wsURL("token="+tok), nil)
			switch {
			case err == nil:
				statuses[i] = resp.StatusCode
				ws.Close()
			case resp != nil:
				statuses[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[http.StatusSwitchingProtocols] != len(statuses) {
		t.Errorf("150 rapid upgrades from one IP, by status: %v, want every one 101", counts)
	}
}

func memEnvGetenv() func(string) string { return envGetenv(memEnv()) }

// envGetenv returns a getenv that reads only env's KEY=value entries.
func envGetenv(env []string) func(string) string {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

// TestAnyOriginWarnsInProduction: "*" is enough to allow any Origin in
// production (no second switch), and start logs one warning about it.
func TestAnyOriginWarnsInProduction(t *testing.T) {
	p := serveInProcess(t, memEnv("HOOKWIRE_ALLOWED_ORIGINS=*"))
	h := http.Header{"Origin": {"https://anything.example"}}
	ws, resp, err := websocket.DefaultDialer.Dial(p.wsURL("token="+subToken(t, "42")), h)
	if err != nil {
		t.Fatalf("upgrade from any Origin with \"*\": %v %v", err, resp)
	}
	ws.Close()
	if n := strings.Count(p.stderr.String(), `"level":"WARN"`+`,"msg":"HOOKWIRE_ALLOWED_ORIGINS has \"*\"`); n != 1 {
		t.Errorf("%d warnings about \"*\" at start, want 1:\n%s", n, p.stderr.String())
	}
	// The switch that used to be needed is gone.
	if _, err := parseServe([]string{"--allow-any-origin"}, memEnvGetenv(), &syncbuf.Buffer{}); err == nil {
		t.Error("--allow-any-origin still parses")
	}
	// Dev mode allows any Origin without the warning.
	d := serveInProcess(t, nil, "--dev")
	if strings.Contains(d.stderr.String(), "ALLOWED_ORIGINS") {
		t.Errorf("dev mode warns about origins:\n%s", d.stderr.String())
	}
}

// TestDemoPageDeclaresItsIcon: the demo page names its icon, so a browser
// does not ask for /favicon.ico and log a 404 on every load.
func TestDemoPageDeclaresItsIcon(t *testing.T) {
	p := serveInProcess(t, nil, "--dev")
	resp, err := http.Get(p.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d %v", resp.StatusCode, err)
	}
	if !strings.Contains(string(page), `<link rel="icon"`) {
		t.Errorf("the demo page declares no icon: browsers ask for /favicon.ico and get 404")
	}
}
