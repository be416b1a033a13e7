package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/internal/redistest"
	"github.com/hookwire/hookwire/internal/syncbuf"
)

// binary is the hookwire binary built once for the black-box tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookwire-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hookwire")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	// As main does: the stream adapter reports outages itself, once.
	redis.SetLogger(quietRedis{})
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testAPIKey = "test-key-0123456789"
	testSecret = "test-secret-0123456789abcdef0123456789"
)

// replica is one running `hookwire serve` process.
type replica struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	exited chan struct{}
}

var listenRE = regexp.MustCompile(`hookwire listening.*?\baddr(?:":"|=)([^"\s]+)`)

// startReplica runs `hookwire serve args...` with env on a free loopback
// port and waits until it listens.
func startReplica(t *testing.T, env []string, args ...string) *replica {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = replicaEnv(env...)
	r := &replica{t: t, cmd: cmd, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = r.stdout
	cmd.Stderr = io.MultiWriter(r.stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close(); close(r.exited) }()
	t.Cleanup(func() {
		r.signal(syscall.SIGKILL)
		<-r.exited
		if t.Failed() {
			t.Logf("replica %s stderr:\n%s", r.base, r.stderr.String())
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		r.base = "http://" + a
	case <-r.exited:
		t.Fatalf("replica exited: %s", r.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("replica did not start: %s", r.stderr.String())
	}
	return r
}

// replicaEnv is the test process's environment without the variables that
// configure hookwire (HOOKWIRE_*, OTEL_*), plus env: a replica or tool
// started by a test sees only what the test sets.
func replicaEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKWIRE_") && !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

func (r *replica) signal(sig syscall.Signal) {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(sig)
	}
}

func prodEnv(redisURL string) []string {
	return []string{
		"HOOKWIRE_REDIS_URL=" + redisURL,
		"HOOKWIRE_API_KEYS=" + testAPIKey,
		"HOOKWIRE_JWT_SECRET=" + testSecret,
		"HOOKWIRE_PING_INTERVAL=2s",
		"HOOKWIRE_DRAIN_TIMEOUT=3s",
	}
}

func subToken(t *testing.T, sub string, channels ...string) string {
	t.Helper()
	tok, err := auth.Sign([]byte(testSecret), auth.Claims{Subject: sub, Channels: channels, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (r *replica) post(t *testing.T, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// subscriber is one WebSocket connection that collects frames.
type subscriber struct {
	ws     *websocket.Conn
	frames chan map[string]any
	closed chan error
}

func (r *replica) connect(t *testing.T, query string) *subscriber {
	t.Helper()
	u := "ws" + strings.TrimPrefix(r.base, "http") + "/v1/ws?" + query
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v %v", r.base, err, resp)
	}
	s := collect(t, ws, 1000)
	if f := s.next(t); f["type"] != "welcome" {
		t.Fatalf("first frame %v", f)
	}
	return s
}

// collect reads ws's frames into a subscriber until the connection ends;
// a frame that is not JSON arrives as {"unparsable": text}.
func collect(t *testing.T, ws *websocket.Conn, buffer int) *subscriber {
	s := &subscriber{ws: ws, frames: make(chan map[string]any, buffer), closed: make(chan error, 1)}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				s.closed <- err
				return
			}
			var f map[string]any
			if err := json.Unmarshal(b, &f); err != nil {
				f = map[string]any{"unparsable": string(b)}
			}
			s.frames <- f
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return s
}

func (s *subscriber) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case err := <-s.closed:
		s.closed <- err // for the next reader
		t.Fatalf("connection closed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return nil
}

// expect reads the next frame and checks its members.
func (s *subscriber) expect(t *testing.T, want map[string]any) map[string]any {
	t.Helper()
	f := s.next(t)
	for k, v := range want {
		if f[k] != v {
			t.Fatalf("frame %v, want %s=%v", f, k, v)
		}
	}
	return f
}

// send writes one text frame.
func (s *subscriber) send(t *testing.T, frame string) {
	t.Helper()
	if err := s.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// closeCode waits for the server's close, skipping frames, and returns its
// code and the frames skipped.
func (s *subscriber) closeCode(t *testing.T, within time.Duration) (int, []map[string]any) {
	t.Helper()
	code, skipped, err := s.closeFrame(t, within)
	if err != nil {
		t.Fatalf("connection ended without a close frame: %v (after %d frames)", err, len(skipped))
	}
	return code, skipped
}

// closeFrame is closeCode that returns the read error instead of failing
// when the connection ended without a close frame.
func (s *subscriber) closeFrame(t *testing.T, within time.Duration) (int, []map[string]any, error) {
	t.Helper()
	var skipped []map[string]any
	timeout := time.After(within)
	for {
		select {
		case f := <-s.frames:
			skipped = append(skipped, f)
		case err := <-s.closed:
			for len(s.frames) > 0 {
				skipped = append(skipped, <-s.frames)
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				return 0, skipped, err
			}
			return ce.Code, skipped, nil
		case <-timeout:
			t.Fatalf("not closed within %v (%d frames)", within, len(skipped))
		}
	}
}

// open checks that no frame and no close arrives for d.
func (s *subscriber) open(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case f := <-s.frames:
		t.Fatalf("unexpected frame %v", f)
	case err := <-s.closed:
		s.closed <- err
		t.Fatalf("connection closed: %v", err)
	case <-time.After(d):
	}
}

func (s *subscriber) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case f := <-s.frames:
		t.Errorf("unexpected frame %v", f)
	case <-time.After(d):
	}
}

// TestTwoReplicasOneRedis: an event posted to replica A reaches the user's
// connections on A and on B, and nobody else's.
func TestTwoReplicasOneRedis(t *testing.T) {
	rs := redistest.Start(t)
	a := serveInProcess(t, prodEnv(rs.URL())).asReplica(t)
	b := serveInProcess(t, prodEnv(rs.URL())).asReplica(t)

	onA := a.connect(t, "token="+subToken(t, "42"))
	onB1 := b.connect(t, "token="+subToken(t, "42"))
	onB2 := b.connect(t, "token="+subToken(t, "42"))
	other := b.connect(t, "token="+subToken(t, "43"))
	priceA := a.connect(t, "token="+subToken(t, "7", "prices.*")+"&channels=prices.EURUSD")
	priceB := b.connect(t, "token="+subToken(t, "8", "prices.*")+"&channels=prices.EURUSD")

	status, body := a.post(t, testAPIKey, `{"id":"evt_1","type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`)
	if status != http.StatusAccepted || body["id"] != "evt_1" || body["cursor"] == "" {
		t.Fatalf("POST = %d %v", status, body)
	}
	for name, s := range map[string]*subscriber{"A": onA, "B1": onB1, "B2": onB2} {
		f := s.next(t)
		if f["type"] != "event" || f["id"] != "evt_1" || f["cursor"] != body["cursor"] {
			t.Errorf("%s got %v", name, f)
		}
		data, _ := f["data"].(map[string]any)
		if data["balance"] != "10.00" {
			t.Errorf("%s data %v", name, f["data"])
		}
	}
	status, _ = b.post(t, testAPIKey, `{"id":"p_1","type":"price","channel":"prices.EURUSD","data":1.0842}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST channel = %d", status)
	}
	for name, s := range map[string]*subscriber{"priceA": priceA, "priceB": priceB} {
		if f := s.next(t); f["id"] != "p_1" || f["channel"] != "prices.EURUSD" {
			t.Errorf("%s got %v", name, f)
		}
	}
	// Idempotency across replicas: the same id on B is a duplicate.
	status, dup := b.post(t, testAPIKey, `{"id":"evt_1","type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`)
	if status != http.StatusOK || dup["duplicate"] != true || dup["cursor"] != body["cursor"] {
		t.Errorf("duplicate POST = %d %v", status, dup)
	}
	other.quiet(t, 300*time.Millisecond)
	onA.quiet(t, 0)
	onB1.quiet(t, 0)
}

func TestProductionRefusesWithoutCredentials(t *testing.T) {
	out, err := command(replicaEnv(), "serve").CombinedOutput()
	if err == nil {
		t.Fatal("serve started without credentials")
	}
	for _, v := range []string{"HOOKWIRE_API_KEYS", "HOOKWIRE_JWT_SECRET"} {
		if !bytes.Contains(out, []byte(v)) {
			t.Errorf("error does not name %s:\n%s", v, out)
		}
	}
}

func TestDevModeQuickstart(t *testing.T) {
	r := serveInProcess(t, []string{"HOOKWIRE_DRAIN_TIMEOUT=1s"}, "--dev").asReplica(t)
	var stdout string
	for i := 0; i < 50 && !strings.Contains(stdout, "Watch it arrive"); i++ {
		time.Sleep(20 * time.Millisecond)
		stdout = r.stdout.String()
	}
	key := regexp.MustCompile(`HOOKWIRE_API_KEYS=(\S+)`).FindStringSubmatch(stdout)
	tok := regexp.MustCompile(`tail --url \S+ --token (\S+)`).FindStringSubmatch(stdout)
	if key == nil || tok == nil || !strings.Contains(stdout, "curl -i") {
		t.Fatalf("dev banner lacks key, token or curl line:\n%s", stdout)
	}
	resp, err := http.Get(r.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("<html")) {
		t.Fatalf("demo page: %d %.200s", resp.StatusCode, page)
	}
	resp, err = http.Get(r.base + "/dev/token")
	if err != nil {
		t.Fatal(err)
	}
	var dt map[string]string
	json.NewDecoder(resp.Body).Decode(&dt)
	resp.Body.Close()
	if dt["token"] == "" || dt["user"] != "demo" {
		t.Fatalf("/dev/token = %v", dt)
	}
	s := r.connect(t, "token="+dt["token"])
	status, body := r.post(t, key[1], `{"type":"balance.updated","users":["demo"],"data":{"balance":"10.00"}}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST = %d %v", status, body)
	}
	if f := s.next(t); f["id"] != body["id"] {
		t.Fatalf("got %v", f)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	rs := redistest.Start(t)
	r := serveInProcess(t, prodEnv(rs.URL())).asReplica(t)
	// A replica is ready once it reads its stream, a moment after it
	// listens (until then /readyz says "starting"): poll, as a balancer does.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(r.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "starting: not reading the stream yet\n" || time.Now().After(deadline) {
			t.Fatalf("/readyz of a starting replica = %d %q, want 503 starting, then 200 within 10s", resp.StatusCode, b)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		resp, err := http.Get(r.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	rs.Kill()
	resp, err := http.Get(r.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down = %d, want 503", resp.StatusCode)
	}
	status, body := r.post(t, testAPIKey, `{"type":"t","users":["1"]}`)
	if status != http.StatusServiceUnavailable {
		t.Errorf("POST with Redis down = %d %v, want 503", status, body)
	}
}

func TestDrainOnSIGTERM(t *testing.T) {
	rs := redistest.Start(t)
	r := startReplica(t, prodEnv(rs.URL()))
	s := r.connect(t, "token="+subToken(t, "42"))
	start := time.Now()
	r.signal(syscall.SIGTERM)
	select {
	case err := <-s.closed:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("close = %v, want 1001", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed on SIGTERM")
	}
	select {
	case <-r.exited:
	case <-time.After(8 * time.Second):
		t.Fatal("replica did not exit within the drain timeout")
	}
	// The budget is 3 s; the rest is slack for a loaded CI machine.
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("drain took %v, budget 3s", d)
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d:\n%s", code, r.stderr.String())
	}
}

func TestTools(t *testing.T) {
	rs := redistest.Start(t)
	r := serveInProcess(t, prodEnv(rs.URL())).asReplica(t)
	env := replicaEnv("HOOKWIRE_URL="+r.base, "HOOKWIRE_API_KEY="+testAPIKey, "HOOKWIRE_JWT_SECRET="+testSecret)
	out, err := command(env, "token", "--sub", "42", "--channels", "prices.*", "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tail := exec.CommandContext(ctx, binary, "tail", "--token", tok, "--channels", "prices.EURUSD")
	tail.Env = env
	tailOut, _ := tail.StdoutPipe()
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { tail.Process.Signal(syscall.SIGINT); tail.Wait() }()
	lines := bufio.NewScanner(tailOut)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"welcome"`) {
		t.Fatalf("tail first line %q", lines.Text())
	}
	out, err = command(env, "publish", "--users", "42", "--type", "balance.updated", "--data", `{"balance":"10.00"}`).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`"cursor"`)) {
		t.Fatalf("publish: %v %s", err, out)
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), `"balance.updated"`) {
		t.Fatalf("tail line %q", lines.Text())
	}
	out, err = command(env, "publish", "--users", "42", "--type", "", "--data", `{}`).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("400")) {
		t.Errorf("invalid publish: %v %s", err, out)
	}
}

func command(env []string, args ...string) *exec.Cmd {
	c := exec.Command(binary, args...)
	c.Env = env
	return c
}
