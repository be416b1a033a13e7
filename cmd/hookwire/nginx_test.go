package main

// TestNginxInFrontOfReplicas runs Debian's nginx with a config generated
// from deploy/nginx.conf (the same directives; only the addresses, the log
// and temp paths and the WebSocket timeouts differ) in front of two real
// replicas on one Redis, and checks what deploy/nginx.conf promises:
// WebSocket upgrades through nginx, round-robin of new connections, ingest,
// idle sockets kept open past nginx's read timeout by the server's pings, a
// SIGTERM'd replica's clients resuming on the other with nothing lost, a
// draining replica's 503 retried on the other, and no token in the access
// log.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/internal/redistest"
	"github.com/hookwire/hookwire/internal/syncbuf"
)

// nginx's WebSocket read timeout in the generated config, and the
// replicas' ping interval: an idle socket outlives the timeout only
// because of the pings.
const (
	nginxWSTimeout   = 3 * time.Second
	nginxPingPeriod  = time.Second
	nginxDrainBudget = 5 * time.Second
)

// lookNginx returns Debian's nginx, or skips (fails under CI).
func lookNginx(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed (apt-get install nginx); CI must run the nginx test")
	}
	t.Skip("nginx is not installed (apt-get install nginx)")
	return ""
}

// nginxConfig turns deploy/nginx.conf into a config for this machine:
// listen on listen, the upstream servers at addrs (no `resolve`, which
// Debian's nginx 1.22 lacks, and no Docker resolver), the access log to
// dir/access.log, temp paths under dir, and a short WebSocket read timeout.
// Every replacement must match, so the test notices when nginx.conf
// changes shape.
func nginxConfig(t *testing.T, src, dir, listen string, addrs []string) string {
	t.Helper()
	// Comments go: only directives matter here.
	conf := regexp.MustCompile(`(?m)^\s*#.*\n`).ReplaceAllString(src, "")
	sub := func(what, pattern string, repl func([]string) string) {
		t.Helper()
		re := regexp.MustCompile(pattern)
		if !re.MatchString(conf) {
			t.Fatalf("deploy/nginx.conf: found no %s (%s)", what, pattern)
		}
		conf = re.ReplaceAllStringFunc(conf, func(m string) string { return repl(re.FindStringSubmatch(m)) })
	}
	sub("resolver", `(?m)^\s*resolver [^;]*;\n`, func([]string) string { return "" })
	sub("access_log", `(?m)^(\s*)access_log /dev/stdout (\w+);`, func(m []string) string {
		return fmt.Sprintf("%saccess_log %s %s;", m[1], filepath.Join(dir, "access.log"), m[2])
	})
	sub("listen", `(?m)^(\s*)listen 80;`, func(m []string) string { return m[1] + "listen " + listen + ";" })
	// hookwire-1:8080 and hookwire-2:8080 of compose.yaml, in every upstream.
	sub("upstream server", `(?m)^(\s*)server hookwire-([12]):8080 resolve( [^;]*)?;`, func(m []string) string {
		i, _ := strconv.Atoi(m[2])
		return m[1] + "server " + addrs[i-1] + m[3] + ";"
	})
	for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		sub(d, `(?m)^(\s*)`+d+` \d+s;`, func(m []string) string {
			return fmt.Sprintf("%s%s %ds;", m[1], d, int(nginxWSTimeout/time.Second))
		})
	}
	// Temp paths under dir, so that no system path is needed.
	var temps strings.Builder
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", p, filepath.Join(dir, p))
	}
	sub("http block", `(?m)^http \{\n`, func(m []string) string { return m[0] + temps.String() })
	if regexp.MustCompile(`\bresolve\b|hookwire-[12]`).MatchString(conf) {
		t.Fatalf("generated nginx.conf still names compose's hosts:\n%s", conf)
	}
	return conf
}

// nginxProc is a running nginx.
type nginxProc struct {
	base   string // http://127.0.0.1:port
	log    string // the access log's path
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncbuf.Buffer
}

func startNginx(t *testing.T, addrs []string) *nginxProc {
	t.Helper()
	bin := lookNginx(t)
	src, err := os.ReadFile(deployNginx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Workers may run as another user when the test runs as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := nginxFreePort(t)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := nginxConfig(t, string(src), dir, listen, addrs)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"),
		"-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
	if out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, conf)
	}
	n := &nginxProc{base: "http://" + listen, log: filepath.Join(dir, "access.log"), exited: make(chan struct{}), stderr: &syncbuf.Buffer{}}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() {
			el, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", el)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(n.base + "/nginx-health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		select {
		case <-n.exited:
			t.Fatalf("nginx exited: %s", n.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer /nginx-health: %v", err)
		}
	}
}

func nginxFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// servedBy returns the index in rs of the replica that logged the
// connection conn, or -1.
func servedBy(rs []*replica, conn string) int {
	needle := `"conn":"` + conn + `"`
	for i, r := range rs {
		if strings.Contains(r.stderr.String(), needle) {
			return i
		}
	}
	return -1
}

// wsURL is nginx's /v1/ws with query.
func (n *nginxProc) wsURL(query url.Values) string {
	return "ws" + strings.TrimPrefix(n.base, "http") + "/v1/ws?" + query.Encode()
}

// dialWelcome opens a WebSocket through nginx and returns it with its
// welcome frame.
func dialWelcome(ctx context.Context, u string) (*websocket.Conn, map[string]any, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			return nil, nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, nil, err
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	ws.SetReadDeadline(time.Time{})
	var f map[string]any
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err == nil && f["type"] != "welcome" {
		err = fmt.Errorf("first frame %s", b)
	}
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	return ws, f, nil
}

// resumer is a subscriber that reconnects through nginx, resuming with
// since, and counts the raw event frames it receives.
type resumer struct {
	mu       sync.Mutex
	frames   int            // event frames received
	seen     map[string]int // event id -> frames with that id
	cursor   string
	conns    []string // conn ids, in connection order
	closes   []string // why each connection ended
	dialErrs int
}

func (c *resumer) state() (cursor string, conns []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor, append([]string(nil), c.conns...)
}

// run connects and reconnects until ctx ends.
func (c *resumer) run(ctx context.Context, n *nginxProc, token string) {
	for ctx.Err() == nil {
		q := url.Values{"token": {token}}
		cursor, _ := c.state()
		if cursor != "" {
			q.Set("since", cursor)
		}
		ws, welcome, err := dialWelcome(ctx, n.wsURL(q))
		if err != nil {
			c.mu.Lock()
			c.dialErrs++
			c.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, fmt.Sprint(welcome["conn"]))
		if cur, _ := welcome["cursor"].(string); c.cursor == "" && cur != "" {
			c.cursor = cur
		}
		c.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.closes = append(c.closes, err.Error())
				c.mu.Unlock()
				break
			}
			var f struct {
				Type   string `json:"type"`
				ID     string `json:"id"`
				Cursor string `json:"cursor"`
			}
			if json.Unmarshal(b, &f) != nil || f.Type != "event" {
				continue
			}
			c.mu.Lock()
			c.frames++
			c.seen[f.ID]++
			c.cursor = f.Cursor
			c.mu.Unlock()
		}
		stop()
		ws.Close()
	}
}

// has reports whether every id in ids arrived.
func (c *resumer) has(ids []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.seen[id] == 0 {
			return false
		}
	}
	return true
}

// nginxPost posts an event through nginx, retrying with the same id on a
// failure or a 5xx as a publisher would; it returns the final status and
// how many attempts failed.
func nginxPost(ctx context.Context, base, body string) (status, failures int) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return resp.StatusCode, failures
			}
		}
		failures++
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, failures
}

func TestNginxInFrontOfReplicas(t *testing.T) {
	lookNginx(t)
	rs := redistest.Start(t)
	env := []string{
		"HOOKWIRE_REDIS_URL=" + rs.URL(),
		"HOOKWIRE_API_KEYS=" + testAPIKey,
		"HOOKWIRE_JWT_SECRET=" + testSecret,
		"HOOKWIRE_PING_INTERVAL=" + nginxPingPeriod.String(),
		"HOOKWIRE_DRAIN_TIMEOUT=" + nginxDrainBudget.String(),
		// X-Forwarded-For from nginx (loopback) is believed.
		"HOOKWIRE_TRUSTED_PROXIES=127.0.0.1/32",
	}
	// startReplica gives each a clean environment: only env, no inherited
	// HOOKWIRE_* or OTEL_* variable.
	replicas := []*replica{startReplica(t, env), startReplica(t, env)}
	addrs := []string{strings.TrimPrefix(replicas[0].base, "http://"), strings.TrimPrefix(replicas[1].base, "http://")}
	n := startNginx(t, addrs)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var tokens []string
	token := func(sub string) string {
		tok := subToken(t, sub)
		tokens = append(tokens, tok)
		return tok
	}

	// Upgrades through nginx, round-robin over both replicas: the
	// welcome's conn id is in the log of the replica that took it.
	idleTok := token("idle")
	perReplica := make([]int, 2)
	var idle []*subscriber
	for i := 0; i < 4; i++ {
		ws, welcome, err := dialWelcome(ctx, n.wsURL(url.Values{"token": {idleTok}}))
		if err != nil {
			t.Fatalf("upgrade %d through nginx: %v", i, err)
		}
		idle = append(idle, collect(t, ws, 100))
		conn := fmt.Sprint(welcome["conn"])
		var who int
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if who = servedBy(replicas, conn); who >= 0 || time.Now().After(deadline) {
				break
			}
		}
		if who < 0 {
			t.Fatalf("no replica logged the connection %s", conn)
		}
		perReplica[who]++
	}
	t.Logf("4 upgrades through nginx: %d on replica 1, %d on replica 2", perReplica[0], perReplica[1])
	if perReplica[0] != 2 || perReplica[1] != 2 {
		t.Errorf("new connections %v over the replicas, want round-robin (2 and 2)", perReplica)
	}

	// Idle past nginx's read timeout: only the server's pings keep the
	// sockets open; then an event through nginx still reaches all four.
	time.Sleep(2*nginxWSTimeout + time.Second)
	status, _ := nginxPost(ctx, n.base, `{"id":"nx-idle","type":"idle.check","users":["idle"],"data":{}}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST through nginx: %d, want 202", status)
	}
	for i, s := range idle {
		select {
		case f := <-s.frames:
			if f["id"] != "nx-idle" {
				t.Errorf("idle connection %d: frame %v", i, f)
			}
		case err := <-s.closed:
			t.Errorf("idle connection %d closed after %s idle (nginx read timeout %s): %v", i, 2*nginxWSTimeout+time.Second, nginxWSTimeout, err)
		case <-time.After(5 * time.Second):
			t.Errorf("idle connection %d: no event", i)
		}
	}
	for _, s := range idle {
		s.ws.Close()
	}

	// Resume across a SIGTERM: subscribers of user "u1" through nginx, a
	// publisher through nginx, and replica 1 terminated midway.
	const events = 300
	u1 := token("u1")
	subs := make([]*resumer, 6)
	subCtx, stopSubs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSubs(); wg.Wait() }()
	for i := range subs {
		subs[i] = &resumer{seen: map[string]int{}}
		wg.Add(1)
		go func() { defer wg.Done(); subs[i].run(subCtx, n, u1) }()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ready := 0
		for _, s := range subs {
			if _, conns := s.state(); len(conns) > 0 {
				ready++
			}
		}
		if ready == len(subs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subscribers connected", ready, len(subs))
		}
	}
	onFirst := 0
	for _, s := range subs {
		_, conns := s.state()
		if servedBy(replicas, conns[0]) == 0 {
			onFirst++
		}
	}
	if onFirst == 0 || onFirst == len(subs) {
		t.Fatalf("%d of %d subscribers on replica 1: want both replicas serving", onFirst, len(subs))
	}

	var (
		ids                                  []string
		accepted, duplicates, postFailures   int
		statuses                             = map[int]int{}
		probes                               []string // conn ids of upgrades during the drain
		probeErrs                            []error
		terminated                           = make(chan time.Time, 1)
		drainProbes, drainProbesDone, pubErr = make(chan struct{}), make(chan struct{}), make(chan error, 1)
	)
	go func() {
		defer close(drainProbesDone)
		<-drainProbes
		// Once replica 1 has taken the signal (it logs "draining"), new
		// upgrades through nginx that reach it get 503 and are retried on
		// replica 2.
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(replicas[0].stderr.String(), `"msg":"draining"`); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				probeErrs = append(probeErrs, errors.New(`replica 1 never logged "draining"`))
				return
			}
		}
		for i := 0; i < 6; i++ {
			ws, welcome, err := dialWelcome(ctx, n.wsURL(url.Values{"token": {idleTok}}))
			if err != nil {
				probeErrs = append(probeErrs, err)
				continue
			}
			probes = append(probes, fmt.Sprint(welcome["conn"]))
			ws.Close()
		}
	}()
	go func() {
		for i := 0; i < events; i++ {
			id := fmt.Sprintf("nx-%04d", i)
			body := fmt.Sprintf(`{"id":%q,"type":"balance.updated","users":["u1"],"data":{"n":%d}}`, id, i)
			st, fails := nginxPost(ctx, n.base, body)
			statuses[st]++
			postFailures += fails
			switch st {
			case http.StatusAccepted:
				accepted++
				ids = append(ids, id)
			case http.StatusOK:
				duplicates++ // a retry whose first attempt was appended
				ids = append(ids, id)
			default:
				pubErr <- fmt.Errorf("event %s: status %d", id, st)
				return
			}
			if i == events/3 {
				replicas[0].signal(syscall.SIGTERM)
				terminated <- time.Now()
				close(drainProbes)
			}
			time.Sleep(10 * time.Millisecond)
		}
		pubErr <- nil
	}()
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	sigterm := <-terminated
	<-drainProbesDone
	select {
	case <-replicas[0].exited:
		t.Logf("replica 1 exited %s after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
	case <-time.After(2 * nginxDrainBudget):
		t.Errorf("replica 1 did not exit within %s of SIGTERM", 2*nginxDrainBudget)
	}

	// Every accepted event reaches every subscriber.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		all := true
		for _, s := range subs {
			all = all && s.has(ids)
		}
		if all {
			break
		}
	}
	stopSubs()
	wg.Wait()

	t.Logf("publisher through nginx: sent %d events, accepted %d (202) + %d duplicates of retried posts (200), %d failed attempts retried, statuses %v",
		events, accepted, duplicates, postFailures, statuses)
	if accepted+duplicates != events {
		t.Errorf("accepted %d + duplicates %d, want %d", accepted, duplicates, events)
	}
	moved := 0
	for i, s := range subs {
		s.mu.Lock()
		lost, dups := 0, 0
		for _, id := range ids {
			switch c := s.seen[id]; {
			case c == 0:
				lost++
			case c > 1:
				dups += c - 1
			}
		}
		first, last := servedBy(replicas, s.conns[0]), servedBy(replicas, s.conns[len(s.conns)-1])
		if first == 0 {
			moved++
			if last != 1 {
				t.Errorf("subscriber %d started on replica 1 and ended on replica %d, want 2", i, last+1)
			}
		}
		t.Logf("subscriber %d: replicas %d→%d, %d connections, %d dial errors, %d event frames, %d distinct, %d lost, %d duplicates",
			i, first+1, last+1, len(s.conns), s.dialErrs, s.frames, len(s.seen), lost, dups)
		if lost > 0 {
			t.Errorf("subscriber %d lost %d of %d accepted events", i, lost, len(ids))
		}
		if first == 0 && len(s.conns) < 2 {
			t.Errorf("subscriber %d was on the terminated replica but never reconnected", i)
		}
		for id := range s.seen {
			if !strings.HasPrefix(id, "nx-") {
				t.Errorf("subscriber %d got a foreign event %s", i, id)
			}
		}
		s.mu.Unlock()
	}
	t.Logf("%d subscribers moved from the terminated replica to the other through nginx", moved)

	// Upgrades during the drain all succeeded, on replica 2.
	if len(probeErrs) > 0 {
		t.Errorf("%d of 6 upgrades through nginx during the drain failed: %v", len(probeErrs), errors.Join(probeErrs...))
	}
	for _, conn := range probes {
		if who := servedBy(replicas, conn); who != 1 {
			t.Errorf("upgrade during the drain served by replica %d, want 2", who+1)
		}
	}

	// nginx's access log: one line per upgrade, the draining replica's 503
	// retried on the other, and no token anywhere.
	n.cmd.Process.Signal(syscall.SIGQUIT) // graceful: finish and log every request
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Error("nginx did not quit")
	}
	accessLog, err := os.ReadFile(n.log)
	if err != nil {
		t.Fatal(err)
	}
	wsLines, retried := 0, 0
	drained := regexp.MustCompile(`upstream=` + regexp.QuoteMeta(addrs[0]) + `, ` + regexp.QuoteMeta(addrs[1]) + ` upstream_status=503, 101\b`)
	for _, line := range strings.Split(string(accessLog), "\n") {
		if strings.Contains(line, `"GET /v1/ws"`) {
			wsLines++
			if drained.MatchString(line) {
				retried++
			}
		}
	}
	t.Logf("nginx access log: %d lines, %d WebSocket upgrades, %d answered 503 by the draining replica and retried on the other", bytes.Count(accessLog, []byte("\n")), wsLines, retried)
	if wsLines < 10 {
		t.Errorf("nginx logged %d WebSocket upgrades, want at least 10:\n%s", wsLines, accessLog)
	}
	if retried == 0 {
		t.Errorf("no upgrade answered 503 by the draining replica and retried on the other (proxy_next_upstream http_503); access log:\n%s", accessLog)
	}
	if bytes.Contains(accessLog, []byte("token=")) {
		t.Errorf("nginx's access log holds a query string with a token")
	}
	for _, tok := range tokens {
		_, sig, _ := strings.Cut(tok[strings.LastIndex(tok, "."):], ".")
		if bytes.Contains(accessLog, []byte(sig)) || bytes.Contains(accessLog, []byte(tok)) {
			t.Errorf("nginx's access log holds a subscriber token")
		}
	}
	if bytes.Contains(accessLog, []byte(testAPIKey)) {
		t.Errorf("nginx's access log holds the API key")
	}
}
