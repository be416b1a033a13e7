package web_test

import (
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hookwire/hookwire/web"
)

var scripts = []string{"hookwire.js", "demo.js"}

func TestAssets(t *testing.T) {
	assets := web.Assets()
	for _, name := range []string{"index.html", "hookwire.js", "demo.js"} {
		t.Run(name, func(t *testing.T) {
			b, err := fs.ReadFile(assets, name)
			if err != nil {
				t.Fatalf("ReadFile(%q): %v", name, err)
			}
			if len(b) == 0 {
				t.Errorf("%s is empty", name)
			}
		})
	}
}

// TestPageIsSafeAndOffline guards two promises of the demo page: server data
// never reaches the DOM as HTML, and nothing is loaded from another origin
// (the page must work on a machine without internet access).
func TestPageIsSafeAndOffline(t *testing.T) {
	assets := web.Assets()
	htmlSinks := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(`)
	for _, name := range scripts {
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatal(err)
		}
		if m := htmlSinks.Find(b); m != nil {
			t.Errorf("%s uses %s; render server data with textContent", name, m)
		}
	}
	page, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//`)
	if m := external.Find(page); m != nil {
		t.Errorf("index.html loads an external resource: %s", m)
	}
	for _, want := range []string{`aria-live="polite"`, `<script type="module" src="./demo.js">`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

// TestDemoElementsExist catches a renamed id: every $('id') in demo.js must
// exist in index.html, or the page fails at load.
func TestDemoElementsExist(t *testing.T) {
	js, err := fs.ReadFile(web.Assets(), "demo.js")
	if err != nil {
		t.Fatal(err)
	}
	page, err := fs.ReadFile(web.Assets(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`\$\('([A-Za-z0-9_-]+)'\)`).FindAllSubmatch(js, -1)
	if len(ids) == 0 {
		t.Fatal("no $('id') lookups found in demo.js")
	}
	for _, m := range ids {
		if !strings.Contains(string(page), `id="`+string(m[1])+`"`) {
			t.Errorf("demo.js looks up #%s, which index.html lacks", m[1])
		}
	}
}

// lookNode returns the node binary or skips the test; under CI a missing
// node fails it.
func lookNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node not on PATH (CI is set)")
		}
		t.Skip("node not on PATH")
	}
	return node
}

// copyScripts writes the embedded scripts to dir as .mjs files, so that node
// treats them as ES modules whatever package.json is around.
func copyScripts(t *testing.T, dir string) {
	t.Helper()
	for _, name := range scripts {
		b, err := fs.ReadFile(web.Assets(), name)
		if err != nil {
			t.Fatal(err)
		}
		mjs := strings.TrimSuffix(name, ".js") + ".mjs"
		if err := os.WriteFile(filepath.Join(dir, mjs), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestScriptsParse(t *testing.T) {
	node := lookNode(t)
	dir := t.TempDir()
	copyScripts(t, dir)
	for _, name := range scripts {
		t.Run(name, func(t *testing.T) {
			mjs := filepath.Join(dir, strings.TrimSuffix(name, ".js")+".mjs")
			if out, err := exec.CommandContext(t.Context(), node, "--check", mjs).CombinedOutput(); err != nil {
				t.Errorf("node --check %s: %v\n%s", name, err, out)
			}
		})
	}
}

// TestClientInNode runs hookwire.js in node against a fake WebSocket class
// on globalThis. Each scenario is one node process; see harness below.
func TestClientInNode(t *testing.T) {
	node := lookNode(t)
	dir := t.TempDir()
	copyScripts(t, dir)
	harnessPath := filepath.Join(dir, "harness.mjs")
	if err := os.WriteFile(harnessPath, []byte(harness), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.ToSlash(filepath.Join(dir, "hookwire.mjs"))
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // C:/x on Windows
	}
	module := (&url.URL{Scheme: "file", Path: p}).String()

	for _, scenario := range []string{
		"welcome_cursor",
		"dedupe",
		"dedupe_bounded",
		"cursor_after_handler",
		"await_in_handler",
		"resume_since",
		"backoff_bounds",
		"quick_reconnect",
		"policy_close",
		"requests",
		"deferred_subscribe",
		"reset",
		"close_stops",
		"error_without_close",
		"refresh",
	} {
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			out, err := exec.CommandContext(t.Context(), node, harnessPath, module, scenario).CombinedOutput()
			if err != nil {
				t.Fatalf("node harness %s: %v\n%s", scenario, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != "ok" {
				t.Errorf("node harness %s printed %q, want ok", scenario, got)
			}
		})
	}
}

// TestDemoInNode loads demo.js against a minimal fake DOM, fetch and
// WebSocket, and checks what the page shows as frames arrive.
func TestDemoInNode(t *testing.T) {
	node := lookNode(t)
	dir := t.TempDir()
	files := map[string]string{"package.json": `{"type": "module"}`, "smoke.js": demoSmoke}
	for _, name := range scripts {
		b, err := fs.ReadFile(web.Assets(), name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.CommandContext(t.Context(), node, filepath.Join(dir, "smoke.js")).CombinedOutput()
	if err != nil {
		t.Fatalf("node smoke.js: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "ok" {
		t.Errorf("node smoke.js printed %q, want ok", got)
	}
}

const demoSmoke = `
import assert from 'node:assert/strict';

class El {
  constructor(tag) {
    this.tagName = tag; this.children = []; this.textContent = ''; this.className = '';
    this.dataset = {}; this.listeners = {}; this.value = ''; this.offsetWidth = 0;
    this.classList = { add() {}, remove() {} };
  }
  append(...cs) { for (const c of cs) { c.parent = this; this.children.push(c); } }
  prepend(c) { c.parent = this; this.children.unshift(c); }
  get lastElementChild() { return this.children[this.children.length - 1]; }
  remove() { this.parent.children.splice(this.parent.children.indexOf(this), 1); }
  replaceChildren() { this.children = []; }
  addEventListener(type, fn) { this.listeners[type] = fn; }
  get text() { return [this.textContent, ...this.children.map((c) => c.text)].join(' '); }
}
const els = {};
globalThis.document = {
  getElementById: (id) => (els[id] ??= new El('div')),
  createElement: (tag) => new El(tag),
};
globalThis.location = { protocol: 'http:', host: 'localhost:8080' };
let tokens = 0;
globalThis.fetch = async (url) => {
  assert.equal(url, '/dev/token');
  tokens++;
  return { ok: true, status: 200, json: async () => ({ token: 'tok' + tokens, user: 'demo', curl: 'curl -i http://x' }) };
};
class FakeWS {
  static all = [];
  constructor(url) { this.url = url; this.sent = []; FakeWS.all.push(this); }
  send(s) { this.sent.push(JSON.parse(s)); }
  close() {}
  recv(f) { this.onmessage({ data: JSON.stringify(f) }); }
}
globalThis.WebSocket = FakeWS;
const realSetTimeout = setTimeout;
globalThis.setTimeout = (fn, ms) => realSetTimeout(fn, Math.min(ms, 5));
const tick = () => new Promise((r) => realSetTimeout(r, 10));

await import('./demo.js');
await tick();
assert.equal(FakeWS.all.length, 1);
assert.equal(FakeWS.all[0].url, 'ws://localhost:8080/v1/ws?token=tok1');
assert.equal(tokens, 1, 'the first token serves the page and the first connect');
assert.equal(els.curl.textContent, 'curl -i http://x');

const ws = FakeWS.all[0];
ws.onopen();
ws.recv({ type: 'welcome', user: 'demo', conn: 'c1', cursor: '0-0' });
assert.equal(els.status.dataset.state, 'open');
assert.equal(els.status.textContent, 'Connected as demo');
assert.equal(els.cursor.textContent, '0-0');
ws.recv({ type: 'event', id: 'e1', cursor: '1-0', event: 'balance.updated', data: { balance: '<b>42.00</b>' }, time: 't' });
await tick();
assert.equal(els.balance.textContent, '<b>42.00</b>', 'shown as text');
assert.equal(els.cursor.textContent, '1-0');
assert.equal(els.frames.children.length, 2);
assert.ok(els.frames.children[0].text.includes('balance.updated'), els.frames.children[0].text);
assert.ok(els.frames.children[0].text.includes('e1'));

ws.recv({ type: 'reset', reason: 'history_expired' });
await tick();
assert.ok(els.frames.children.some((li) => li.className === 'reset'), 'reset highlighted');

ws.onclose({ code: 1006, reason: '' });
assert.equal(els.status.dataset.state, 'reconnecting');
assert.ok(els.status.textContent.includes('attempt 1'), els.status.textContent);
assert.equal(els.reconnects.textContent, '1');
await tick(); await tick();
assert.equal(FakeWS.all.length, 2);
assert.equal(new URL(FakeWS.all[1].url).searchParams.get('token'), 'tok2', 'a fresh token per connect');

const ws2 = FakeWS.all[1];
ws2.onopen();
ws2.recv({ type: 'welcome', user: 'demo', conn: 'c2' });
for (let i = 0; i < 300; i++) ws2.recv({ type: 'event', id: 'n' + i, cursor: (i + 2) + '-0', event: 'x', data: i });
await tick();
assert.equal(els.frames.children.length, 200, 'the list is capped');
assert.equal(els['frame-count'].textContent, '(200)');
assert.equal(els.balance.textContent, '—', 'cleared by the reset; events without data.balance leave it alone');
assert.equal(els.cursor.textContent, '301-0');

els.toggle.listeners.click();
assert.equal(els.status.dataset.state, 'closed');
assert.equal(els.toggle.textContent, 'Connect');
console.log('ok');
process.exit(0);
`

// harness is run as `node harness.mjs <file URL of hookwire.mjs> <scenario>`.
// It replaces WebSocket, setTimeout (recording the client's delays and then
// firing at once), Math.random and Date.now where a scenario needs it.
const harness = `
import assert from 'node:assert/strict';

const realSetTimeout = globalThis.setTimeout;
const delays = [];
globalThis.setTimeout = (fn, ms, ...args) => { delays.push(ms); return realSetTimeout(fn, 0, ...args); };
const errors = [];
console.error = (...a) => errors.push(a.join(' '));

class FakeWS {
  static all = [];
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; FakeWS.all.push(this); }
  send(s) { assert.equal(this.readyState, 1, 'send on a socket that is not open'); this.sent.push(JSON.parse(s)); }
  close(code) { this.readyState = 3; this.closedWith = code; }
  open() { this.readyState = 1; this.onopen && this.onopen({}); }
  recv(f) { this.onmessage && this.onmessage({ data: typeof f === 'string' ? f : JSON.stringify(f) }); }
  drop(code, reason = '') { this.readyState = 3; this.onclose && this.onclose({ code, reason }); }
  get params() { return new URL(this.url).searchParams; }
}
globalThis.WebSocket = FakeWS;

const { HookwireClient, default: Default } = await import(process.argv[2]);
assert.equal(Default, HookwireClient);
const URL_ = 'ws://bridge.test/v1/ws';
const tick = () => new Promise((r) => realSetTimeout(r, 2));
async function conn(n) {
  for (let i = 0; i < 500 && FakeWS.all.length < n; i++) await tick();
  assert.equal(FakeWS.all.length, n, 'number of connections');
  return FakeWS.all[n - 1];
}
async function welcomed(n, frame = {}) {
  const ws = await conn(n);
  ws.open();
  ws.recv({ type: 'welcome', user: 'u1', conn: 'c' + n, ...frame });
  await tick();
  return ws;
}
const ev = (id, cursor, data = {}) => ({ type: 'event', id, cursor, event: 'balance.updated', data, time: '2026-01-01T00:00:00Z' });

const scenarios = {
  async welcome_cursor() {
    const c = new HookwireClient({ url: URL_, token: 't' });
    c.connect();
    const ws = await conn(1);
    assert.equal(ws.params.get('since'), null);
    assert.equal(c.cursor, null);
    await welcomed(1, { cursor: '5-0' });
    assert.equal(c.cursor, '5-0', 'adopts the welcome cursor');
    ws.drop(1006);
    const ws2 = await welcomed(2, { cursor: '9-0' });
    assert.equal(ws2.params.get('since'), '5-0');
    assert.equal(c.cursor, '5-0', 'keeps its own cursor over a later welcome cursor');

    const c2 = new HookwireClient({ url: URL_, token: 't', since: '3-0' });
    c2.connect();
    const ws3 = await welcomed(3, { cursor: '9-0' });
    assert.equal(ws3.params.get('since'), '3-0');
    assert.equal(c2.cursor, '3-0');
  },

  async dedupe() {
    const got = [];
    const c = new HookwireClient({ url: URL_, token: 't', onEvent: (f) => got.push(f.id) });
    c.connect();
    const ws = await welcomed(1);
    for (const f of [ev('e1', '1-0'), ev('e1', '1-0'), ev('e2', '2-0'), ev('e1', '1-0')]) ws.recv(f);
    await tick();
    assert.deepEqual(got, ['e1', 'e2']);
    ws.drop(1006);
    const ws2 = await welcomed(2);
    ws2.recv(ev('e2', '2-0')); // replayed after resume
    ws2.recv(ev('e3', '3-0'));
    await tick();
    assert.deepEqual(got, ['e1', 'e2', 'e3'], 'repeats across connections are dropped too');
    assert.equal(c.cursor, '3-0');
  },

  async dedupe_bounded() {
    const got = [];
    const c = new HookwireClient({ url: URL_, token: 't', onEvent: (f) => got.push(f.id) });
    c.connect();
    const ws = await welcomed(1);
    for (let i = 0; i <= 1000; i++) ws.recv(ev('e' + i, i + '-0'));
    ws.recv(ev('e1000', '1000-0')); // still remembered
    ws.recv(ev('e0', '0-0')); // forgotten: the 1001st id pushed it out
    await tick();
    assert.equal(got.length, 1002);
    assert.equal(got[1001], 'e0');
    assert.ok(c._seen.size <= 1000, 'remembers at most 1000 ids, has ' + c._seen.size);
  },

  async cursor_after_handler() {
    let release;
    const during = [];
    let fail = true;
    const c = new HookwireClient({
      url: URL_, token: 't',
      onEvent: (f) => {
        during.push(c.cursor);
        if (f.id === 'boom' && fail) { fail = false; throw new Error('handler bug'); }
        if (f.id === 'slow') return new Promise((r) => { release = r; });
      },
    });
    c.connect();
    const ws = await welcomed(1);
    ws.recv(ev('e1', '1-0'));
    ws.recv(ev('e2', '2-0'));
    await tick();
    assert.deepEqual(during, [null, '1-0'], 'cursor moves only after onEvent returned');
    ws.recv(ev('slow', '3-0'));
    ws.recv(ev('e4', '4-0'));
    await tick();
    assert.equal(c.cursor, '2-0', 'an unresolved async onEvent holds the cursor back');
    assert.equal(during.length, 3, 'the next event waits for the previous handler');
    release();
    await tick();
    assert.equal(c.cursor, '4-0');
    ws.recv(ev('boom', '5-0'));
    await tick();
    assert.equal(c.cursor, '4-0', 'a throwing onEvent does not advance the cursor');
    assert.ok(errors.some((e) => e.includes('handler bug')), 'the error is reported');
    ws.recv(ev('boom', '5-0'));
    await tick();
    assert.equal(c.cursor, '5-0', 'a failed event is not marked seen');
  },

  async await_in_handler() {
    const log = [];
    const c = new HookwireClient({ url: URL_, token: 't', onEvent: async (f) => {
      log.push('start ' + f.id);
      if (f.id === 'e1') log.push((await c.subscribe('x')).type);
      if (f.id === 'e2') log.push((await c.subscribe('y')).type); // the connection drops meanwhile
      log.push('end ' + f.id);
    } });
    c.connect();
    const ws = await welcomed(1);
    ws.recv(ev('e1', '1-0'));
    ws.recv(ev('e2', '2-0'));
    await tick();
    assert.deepEqual(log, ['start e1'], 'the next event waits');
    ws.recv({ type: 'subscribed', channel: 'x', ref: ws.sent[0].ref });
    await tick();
    assert.deepEqual(log, ['start e1', 'subscribed', 'end e1', 'start e2']);
    ws.drop(1006);
    const ws2 = await welcomed(2);
    assert.equal(ws2.params.get('since'), '1-0');
    assert.equal(ws2.params.get('channels'), 'x,y');
    await tick();
    assert.deepEqual(log.slice(4), ['subscribed', 'end e2'], 'settled by the next welcome');
    assert.equal(c.cursor, '2-0');
  },

  async resume_since() {
    let n = 0;
    const c = new HookwireClient({ url: URL_ + '?x=1', getToken: async () => 'tok' + ++n, channels: ['a', 'b&c'] });
    c.connect();
    const ws = await conn(1);
    assert.equal(ws.params.get('token'), 'tok1');
    assert.equal(ws.params.get('channels'), 'a,b&c', 'channels are URL-encoded');
    assert.equal(ws.params.get('x'), '1', 'keeps the base URL query');
    assert.equal(ws.params.get('since'), null);
    await welcomed(1);
    ws.recv(ev('e1', '1-0/7'));
    const sub = c.subscribe('x');
    await tick();
    ws.recv({ type: 'subscribed', channel: 'x', ref: ws.sent[0].ref });
    await sub;
    ws.drop(1006);
    const ws2 = await conn(2);
    assert.equal(ws2.params.get('since'), '1-0/7');
    assert.equal(ws2.params.get('token'), 'tok2', 'getToken is called before every connect');
    assert.equal(ws2.params.get('channels'), 'a,b&c,x', 'subscribed channels are resubscribed');
    assert.ok(ws2.url.includes('since=1-0%2F7'), ws2.url);
  },

  async backoff_bounds() {
    const statuses = [];
    let now = 1000;
    Date.now = () => now;
    const base = 100, cap = 1000;
    const c = new HookwireClient({ url: URL_, token: 't', baseBackoffMs: base, maxBackoffMs: cap,
      onStatus: (s, d) => statuses.push([s, d]) });
    c.connect();
    for (let i = 0; i < 12; i++) {
      if (i === 6) Math.random = () => 0.999999;
      (await conn(i + 1)).drop(1006); // never opened
    }
    await conn(13);
    assert.equal(delays.length, 12);
    delays.forEach((d, i) => {
      const ceiling = Math.min(cap, base * 2 ** i);
      assert.ok(d >= 0 && d <= ceiling, 'attempt ' + i + ': delay ' + d + ' not in [0, ' + ceiling + ']');
    });
    assert.ok(delays[11] >= 0.99 * cap, 'capped delay ' + delays[11] + ' reaches the cap');
    const attempts = statuses.filter(([s]) => s === 'reconnecting').map(([, d]) => d.attempt);
    assert.deepEqual(attempts, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

    // Open for 10 s without a welcome: the backoff starts over.
    const ws = await conn(13);
    ws.open();
    now += 10000;
    ws.drop(1006);
    await conn(14);
    assert.ok(delays[12] <= base, 'after a stable connection: ' + delays[12]);
    // A welcome resets it as well.
    for (let i = 14; i < 18; i++) (await conn(i)).drop(1006);
    await welcomed(18);
    FakeWS.all[17].drop(1006);
    await conn(19);
    assert.ok(delays[17] <= base, 'after a welcome: ' + delays[17]);
    assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d <= cap));
  },

  async quick_reconnect() {
    Math.random = () => 0.999999;
    const c = new HookwireClient({ url: URL_, token: 't', baseBackoffMs: 1000, maxBackoffMs: 60000 });
    c.connect();
    for (let i = 1; i <= 5; i++) (await conn(i)).drop(1006);
    assert.ok(delays[4] > 10000, 'backoff grew: ' + delays[4]);
    (await conn(6)).drop(1001, 'draining');
    (await conn(7)).drop(1013, 'too slow');
    await conn(8);
    assert.ok(delays[5] <= 250 && delays[6] <= 250, 'draining / too slow: ' + delays.slice(5));
  },

  async policy_close() {
    let n = 0;
    const c = new HookwireClient({ url: URL_, getToken: async () => 'tok' + ++n });
    c.connect();
    await welcomed(1);
    FakeWS.all[0].drop(1008, 'token expired');
    const ws2 = await conn(2);
    assert.equal(ws2.params.get('token'), 'tok2', 'fresh token after 1008');

    const s = new HookwireClient({ url: URL_, token: 'static' });
    s.connect();
    await welcomed(3);
    FakeWS.all[2].drop(1008, 'token expired');
    assert.equal((await conn(4)).params.get('token'), 'static', 'static token: still retries');

    let fails = true;
    const f = new HookwireClient({ url: URL_, baseBackoffMs: 10,
      getToken: async () => { if (fails) { fails = false; throw new Error('no token'); } return 'ok'; } });
    f.connect();
    assert.equal((await conn(5)).params.get('token'), 'ok', 'a failing getToken is retried');
  },

  async requests() {
    const errs = [];
    const c = new HookwireClient({ url: URL_, token: 't', onError: (e) => errs.push(e) });
    await assert.rejects(c.ping(), /not connected/);
    c.connect();
    const ws = await welcomed(1);
    const p1 = c.subscribe('prices.EURUSD', { since: '4-0' });
    const p2 = c.subscribe('secret').catch((e) => e); // settled before we look: keep it handled
    const p3 = c.ping();
    assert.deepEqual(ws.sent.map(({ ref, ...f }) => f), [
      { op: 'subscribe', channel: 'prices.EURUSD', since: '4-0' },
      { op: 'subscribe', channel: 'secret' },
      { op: 'ping' },
    ]);
    const refs = ws.sent.map((f) => f.ref);
    assert.equal(new Set(refs).size, 3, 'refs are unique');
    assert.ok(refs.every((r) => typeof r === 'string'));
    ws.recv({ type: 'pong', ref: refs[2] });
    ws.recv({ type: 'error', code: 'forbidden', message: 'not allowed', ref: refs[1] });
    ws.recv({ type: 'subscribed', channel: 'prices.EURUSD', ref: refs[0] });
    ws.recv({ type: 'error', code: 'bad_request', message: 'what?' });
    ws.recv('not json');
    await tick();
    assert.equal((await p1).type, 'subscribed');
    const refused = await p2;
    assert.ok(refused instanceof Error && refused.code === 'forbidden' && refused.frame.ref === refs[1], String(refused));
    assert.equal((await p3).type, 'pong');
    assert.deepEqual(c.channels, ['prices.EURUSD'], 'a refused channel is forgotten');
    assert.deepEqual(errs.map((e) => e.code), ['bad_request', 'bad_frame'], 'onError gets unanswered errors only');
    const p4 = c.unsubscribe('prices.EURUSD');
    assert.deepEqual(ws.sent[3], { op: 'unsubscribe', channel: 'prices.EURUSD', ref: ws.sent[3].ref });
    ws.recv({ type: 'unsubscribed', channel: 'prices.EURUSD', ref: ws.sent[3].ref });
    assert.equal((await p4).type, 'unsubscribed');
    assert.deepEqual(c.channels, []);
  },

  async deferred_subscribe() {
    const c = new HookwireClient({ url: URL_, token: 't', channels: ['a'] });
    c.connect();
    const ws = await welcomed(1);
    const inflight = c.subscribe('b'); // sent, but the connection dies before the answer
    const ping = c.ping();
    ws.drop(1006);
    await assert.rejects(ping, /connection lost/);
    const offline = c.subscribe('c'); // while disconnected
    const gone = c.unsubscribe('a');
    const ws2 = await conn(2);
    assert.equal(ws2.params.get('channels'), 'b,c');
    await welcomed(2);
    assert.equal((await inflight).channel, 'b');
    assert.equal((await offline).channel, 'c');
    assert.equal((await gone).type, 'unsubscribed');
    assert.deepEqual(ws2.sent, [], 'the URL already carried every change');

    // Subscribed while the socket is connecting: the URL lacks it, so ask after the welcome.
    ws2.drop(1006);
    const ws3 = await conn(3);
    const late = c.subscribe('d');
    ws3.open();
    ws3.recv({ type: 'welcome', user: 'u1', conn: 'c3' });
    await tick();
    assert.deepEqual(ws3.sent.map((f) => [f.op, f.channel]), [['subscribe', 'd']]);
    ws3.recv({ type: 'subscribed', channel: 'd', ref: ws3.sent[0].ref });
    assert.equal((await late).ref, ws3.sent[0].ref);
  },

  async reset() {
    const reasons = [];
    const c = new HookwireClient({ url: URL_, token: 't', since: 'old', onReset: (r) => reasons.push(r) });
    c.connect();
    const ws = await welcomed(1);
    assert.equal(ws.params.get('since'), 'old');
    ws.recv({ type: 'reset', reason: 'history_expired' });
    await tick();
    assert.deepEqual(reasons, ['history_expired']);
    assert.equal(c.cursor, null);
    ws.drop(1001);
    const ws2 = await welcomed(2, { cursor: '10-0' });
    assert.equal(ws2.params.get('since'), null, 'no since after a reset');
    assert.equal(c.cursor, '10-0');
  },

  async error_without_close() {
    // Node 20's WebSocket fires only error when the handshake fails (a 503, a reset).
    const c = new HookwireClient({ url: URL_, token: 't' });
    c.connect();
    const ws = await conn(1);
    ws.onerror({});
    const ws2 = await conn(2);
    ws.drop(1006); // a late close of the first socket changes nothing
    await welcomed(2);
    for (let i = 0; i < 10; i++) await tick();
    assert.equal(FakeWS.all.length, 2, 'one reconnect');
    // On an open socket, error waits for close and its code.
    ws2.onerror({});
    for (let i = 0; i < 10; i++) await tick();
    assert.equal(FakeWS.all.length, 2, 'no reconnect before the close');
    ws2.drop(1013);
    await conn(3);
    assert.ok(delays.at(-1) < 250, 'the close code counted: quick reconnect after 1013');
  },

  async refresh() {
    const c = new HookwireClient({ url: URL_, getToken: async () => 'fresh', channels: ['a', 'b'] });
    await assert.rejects(c.refresh('x'), /not connected/);
    c.connect();
    const ws = await welcomed(1);
    const r1 = c.refresh();
    await tick();
    assert.deepEqual(ws.sent.at(-1), { op: 'refresh', token: 'fresh', ref: ws.sent.at(-1).ref });
    // The new token no longer grants b: the server leaves it first, without a ref.
    ws.recv({ type: 'unsubscribed', channel: 'b' });
    ws.recv({ type: 'refreshed', exp: '2026-01-01T01:00:00Z', ref: ws.sent.at(-1).ref });
    assert.equal((await r1).exp, '2026-01-01T01:00:00Z');
    assert.deepEqual(c.channels, ['a'], 'a channel the server left is not asked for again');
    const r2 = c.refresh('bad');
    await tick();
    ws.recv({ type: 'error', code: 'invalid_token', message: 'no', ref: ws.sent.at(-1).ref });
    await assert.rejects(r2, (e) => e.code === 'invalid_token');
    const r3 = c.refresh('late');
    await tick();
    ws.drop(1006);
    await assert.rejects(r3, /connection lost/);
    const ws2 = await conn(2);
    assert.equal(ws2.params.get('channels'), 'a');
  },

  async close_stops() {
    const statuses = [];
    const got = [];
    const c = new HookwireClient({ url: URL_, token: 't', onStatus: (s) => statuses.push(s), onEvent: (f) => got.push(f.id) });
    c.connect();
    const ws = await welcomed(1);
    const ping = c.ping();
    c.close();
    await assert.rejects(ping, /closed/);
    assert.equal(ws.closedWith, 1000);
    ws.drop(1000);
    ws.recv(ev('late', '1-0'));
    for (let i = 0; i < 10; i++) await tick();
    assert.equal(FakeWS.all.length, 1, 'no reconnect after close()');
    assert.deepEqual(got, []);
    assert.deepEqual(statuses, ['connecting', 'open', 'closed']);
    c.connect(); // and it can start again
    await welcomed(2);
    assert.equal(statuses.at(-1), 'open');
  },
};

const run = scenarios[process.argv[3]];
if (!run) { console.log('unknown scenario ' + process.argv[3]); process.exit(2); }
await run();
console.log('ok');
process.exit(0);
`
