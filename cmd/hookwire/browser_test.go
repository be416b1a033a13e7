package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookwire/hookwire/internal/redistest"
	"github.com/hookwire/hookwire/internal/syncbuf"
)

// browserTimeout bounds one headless browser, from its start to its end.
const browserTimeout = 60 * time.Second

// TestDemoPageShowsBalanceUpdate drives the demo page of `hookwire serve
// --dev` in a real headless Chromium: what a newcomer sees after posting the
// curl line, and that the page reconnects and resumes by itself when its
// server goes away.
func TestDemoPageShowsBalanceUpdate(t *testing.T) {
	exe := chromiumPath(t)

	t.Run("balance", func(t *testing.T) {
		r := startReplica(t, nil, "--dev")
		key := devAPIKey(t, r)
		p := openPage(t, exe, r.base+"/")
		p.waitConnected()

		for _, balance := range []string{"10.00", "12.50"} {
			id := postBalance(t, r, key, "", balance)
			p.waitFor("balance "+balance, `document.getElementById('balance').textContent.includes(`+jsString(balance)+`)`)
			p.waitFor("event "+id+" in the frames list", framesHave(id))
		}
		p.screenshot("demo-balance.png")
	})

	t.Run("reconnects and resumes", func(t *testing.T) {
		rs := redistest.Start(t)
		env := []string{
			"HOOKWIRE_REDIS_URL=" + rs.URL(),
			"HOOKWIRE_API_KEYS=" + testAPIKey,
			"HOOKWIRE_JWT_SECRET=" + testSecret,
			"HOOKWIRE_DRAIN_TIMEOUT=1s", // a short outage: fewer failed attempts, less backoff
		}
		a := startReplica(t, env, "--dev")
		b := startReplica(t, env, "--dev")
		p := openPage(t, exe, a.base+"/")
		p.waitConnected()
		first := postBalance(t, a, testAPIKey, "evt_browser_before", "1.00")
		p.waitFor("balance 1.00", `document.getElementById('balance').textContent.includes('1.00')`)
		p.waitFor("event "+first+" in the frames list", framesHave(first))

		// The page's origin goes away: A drains (1001) and exits.
		stopped := time.Now()
		a.signal(syscall.SIGTERM)
		select {
		case <-a.exited:
			t.Logf("replica A exited %v after SIGTERM (drain budget 1s), exit code %d",
				time.Since(stopped).Round(time.Millisecond), a.cmd.ProcessState.ExitCode())
		case <-time.After(10 * time.Second):
			t.Fatal("replica A did not exit after SIGTERM")
		}
		p.waitFor("the page to notice the disconnect", `document.getElementById('reconnects').textContent !== '0'`)

		// Posted while the page has no connection: only a resume with
		// since can bring it.
		missed := postBalance(t, b, testAPIKey, "evt_browser_outage", "20.00")

		// A comes back on the same address, so the page's origin works again.
		startReplicaAt(t, strings.TrimPrefix(a.base, "http://"), env, "--dev")
		p.waitConnected()
		p.waitFor("balance 20.00 from the event posted during the outage",
			`document.getElementById('balance').textContent.includes('20.00')`)
		p.waitFor("event "+missed+" in the frames list", framesHave(missed))
		p.waitFor("reconnect count >= 1", `Number(document.getElementById('reconnects').textContent) >= 1`)
		if resets := p.eval(`document.querySelectorAll('#frames li.reset').length`); resets != "0" {
			p.fail("the page got %s reset frame(s): the resume lost history", resets)
		}
		p.screenshot("demo-resume.png")
	})
}

// chromiumPath finds a Chromium for chromedp. Without one the test is
// skipped, unless CI is set: then it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium, chromium-browser or headless_shell on PATH (CI is set)")
	}
	t.Skip("no chromium, chromium-browser or headless_shell on PATH")
	return ""
}

// devAPIKey reads the generated API key from the --dev banner.
func devAPIKey(t *testing.T, r *replica) string {
	t.Helper()
	re := regexp.MustCompile(`HOOKWIRE_API_KEYS=(\S+)`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := re.FindStringSubmatch(r.stdout.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no API key in the dev banner:\n%s", r.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startReplicaAt starts a replica on addr, which a replica that just
// stopped released; it waits briefly until the port can be bound again.
func startReplicaAt(t *testing.T, addr string, env []string, args ...string) *replica {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in use: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The last --listen wins over startReplica's 127.0.0.1:0.
	return startReplica(t, env, append(args, "--listen", addr)...)
}

// postBalance posts a balance.updated event for the demo user and returns
// its id (the server's, when id is empty).
func postBalance(t *testing.T, r *replica, key, id, balance string) string {
	t.Helper()
	ev := map[string]any{"type": "balance.updated", "users": []string{"demo"}, "data": map[string]string{"balance": balance}}
	if id != "" {
		ev["id"] = id
	}
	b, _ := json.Marshal(ev)
	status, body := r.post(t, key, string(b))
	got, _ := body["id"].(string)
	if status != http.StatusAccepted || got == "" {
		t.Fatalf("POST %s = %d %v", b, status, body)
	}
	return got
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// framesHave is a predicate: the frames list shows the event with this id.
func framesHave(id string) string {
	return `document.getElementById('frames').textContent.includes(` + jsString("id "+id) + `)`
}

// page is one tab of a headless Chromium with the demo page loaded.
type page struct {
	t       *testing.T
	ctx     context.Context
	console *syncbuf.Buffer // the page's console messages and uncaught exceptions
}

// openPage starts a headless Chromium, bounded by browserTimeout, and
// navigates to url. On failure the cleanup logs the page's console and the
// browser's output.
func openPage(t *testing.T, exe, url string) *page {
	t.Helper()
	dataDir := t.TempDir() // before the cleanup below, so removed after the browser stopped
	output := &syncbuf.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(output),
	)
	timeoutCtx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeoutCtx, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	p := &page{t: t, ctx: ctx, console: &syncbuf.Buffer{}}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
		if t.Failed() {
			t.Logf("page console:\n%s", p.console.String())
			var lines []string
			for _, l := range strings.Split(output.String(), "\n") {
				if !strings.Contains(l, "dbus") { // no D-Bus in containers: noise
					lines = append(lines, l)
				}
			}
			out := strings.Join(lines, "\n")
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("chromium output (tail):\n%s", out)
		}
	})
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil { // starts the browser and opens the tab
		t.Fatalf("starting %s: %v\n%s", exe, err, output.String())
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			fmt.Fprintf(p.console, "%s %s\n", m.Time.Format("15:04:05.000"), m)
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		p.fail("navigate to %s: %v", url, err)
	}
	t.Logf("browser up and %s loaded in %v", url, time.Since(start).Round(time.Millisecond))
	return p
}

// waitConnected waits until the status says the page is connected.
func (p *page) waitConnected() {
	p.t.Helper()
	p.waitFor("status connected", `document.getElementById('status').dataset.state === 'open'`)
}

// waitFor waits until the JavaScript expression is truthy.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	start := time.Now()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		p.fail("waiting for %s: %v", what, err)
	}
	p.t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

// eval returns the value of a JavaScript expression, as a string.
func (p *page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// fail reports what the page shows, takes a screenshot and stops the test.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	state, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify({
		status: document.getElementById('status')?.dataset.state + ': ' + document.getElementById('status')?.textContent,
		balance: document.getElementById('balance')?.textContent,
		cursor: document.getElementById('cursor')?.textContent,
		reconnects: document.getElementById('reconnects')?.textContent,
		frames: document.getElementById('frames')?.innerText.slice(0, 3000),
	}, null, 1)`))
	if err != nil {
		state = "(page state unavailable: " + err.Error() + ")"
	}
	p.screenshot("failed.png")
	p.t.Fatalf("%s\npage state: %s", fmt.Sprintf(format, args...), state)
}

// screenshot saves a full-page PNG in the test's temporary directory and,
// when HOOKWIRE_SCREENSHOT_DIR is set, copies it there.
func (p *page) screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	prefix := strings.NewReplacer("/", "_", " ", "_").Replace(p.t.Name()) + "-"
	path := filepath.Join(p.t.TempDir(), prefix+name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Errorf("screenshot: %v", err)
		return
	}
	if dir := os.Getenv("HOOKWIRE_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Errorf("screenshot: %v", err)
			return
		}
		path = filepath.Join(dir, prefix+name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			p.t.Errorf("screenshot: %v", err)
			return
		}
	}
	p.t.Logf("screenshot: %s", path)
}
