// demo.js: the page served by `hookwire serve --dev` at `/`. It connects as
// the dev user with a token from GET /dev/token and shows every frame it gets.
// All server data is rendered with textContent, never as HTML.
import { HookwireClient } from './hookwire.js';

const MAX_FRAMES = 200;
const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), toggle: $('toggle'), balance: $('balance'), user: $('user'), conn: $('conn'),
  cursor: $('cursor'), reconnects: $('reconnects'), curl: $('curl'), copy: $('copy'),
  copyResult: $('copy-result'), frames: $('frames'), count: $('frame-count'), clear: $('clear'),
  subForm: $('sub-form'), channel: $('channel'), channels: $('channels'),
};
let reconnects = 0;
let running = true;
const firstToken = fetchToken(); // shared by the page setup and the first connect
let firstUsed = false;

async function fetchToken() {
  const res = await fetch('/dev/token', { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET /dev/token: HTTP ${res.status} (is the server running with --dev?)`);
  return res.json();
}

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addEntry(kind, parts, body) {
  const li = el('li', kind);
  const meta = el('div', 'meta');
  for (const [cls, text] of parts) if (text !== undefined && text !== null && text !== '') meta.append(el('span', cls, String(text)));
  li.append(meta);
  if (body !== undefined) li.append(el('pre', '', body));
  ui.frames.prepend(li);
  while (ui.frames.children.length > MAX_FRAMES) ui.frames.lastElementChild.remove();
  ui.count.textContent = `(${ui.frames.children.length})`;
}

function showFrame(f) {
  const received = new Date().toLocaleTimeString();
  if (f.type === 'event') {
    addEntry('event', [['tag', 'event'], ['mono', f.event], ['mono muted', f.id && `id ${f.id}`],
      ['mono muted', f.cursor && `cursor ${f.cursor}`], ['muted', f.channel && `channel ${f.channel}`],
      ['muted', f.time]], JSON.stringify(f.data, null, 2));
    return;
  }
  const { type, ...rest } = f;
  const kind = type === 'reset' ? 'reset' : type === 'error' ? 'error' : 'frame';
  const label = type === 'reset' ? 'reset: history gone, state reloaded' : type;
  addEntry(kind, [['tag', label], ['muted', `received ${received}`]], JSON.stringify(rest, null, 2));
}

function note(text) {
  addEntry('note', [['', text], ['muted', new Date().toLocaleTimeString()]]);
}

function showCursor() { ui.cursor.textContent = client.cursor || '—'; }

function showChannels() {
  const list = client.channels;
  ui.channels.textContent = list.length ? `Subscribed: ${list.join(', ')}` : 'Only events sent to the user so far.';
}

const client = new HookwireClient({
  async getToken() {
    const pending = firstUsed ? fetchToken() : firstToken; // a fresh token for every later connect
    firstUsed = true;
    return (await pending).token;
  },
  onFrame: showFrame,
  onEvent(f) {
    const d = f.data;
    if (d && typeof d === 'object' && !Array.isArray(d) && 'balance' in d) {
      ui.balance.textContent = String(d.balance);
      ui.balance.classList.remove('flash');
      void ui.balance.offsetWidth; // restart the animation
      ui.balance.classList.add('flash');
    }
    // The client records the cursor only after this returns: show it a moment later.
    setTimeout(showCursor, 0);
  },
  onReset(reason) {
    ui.balance.textContent = '—';
    showCursor();
    note(`History gone (${reason}): a real app reloads its state from the backend here.`);
  },
  onError(f) { if (f.code === 'bad_frame') showFrame(f); },
  onStatus(status, d) {
    switch (status) {
      case 'connecting':
        setStatus('connecting', d.attempt ? `Connecting… (attempt ${d.attempt})` : 'Connecting…');
        break;
      case 'open':
        setStatus('open', `Connected as ${d.user}`);
        ui.user.textContent = d.user;
        ui.conn.textContent = d.conn;
        showCursor();
        break;
      case 'reconnecting': {
        reconnects++;
        ui.reconnects.textContent = String(reconnects);
        const why = d.error ? d.error.message : `close code ${d.code}${d.reason ? `: ${d.reason}` : ''}`;
        const secs = (d.delayMs / 1000).toFixed(1);
        setStatus('reconnecting', `Reconnecting (attempt ${d.attempt}) in ${secs} s… ${why}`);
        note(`Connection lost (${why}). Reconnecting in ${secs} s, resuming after cursor ${client.cursor || '(none)'}.`);
        break;
      }
      case 'closed':
        setStatus('closed', 'Disconnected');
        break;
    }
  },
});

ui.toggle.addEventListener('click', () => {
  running = !running;
  ui.toggle.textContent = running ? 'Disconnect' : 'Connect';
  if (running) client.connect();
  else {
    client.close();
    note('Disconnected by you.');
  }
});

ui.clear.addEventListener('click', () => {
  ui.frames.replaceChildren();
  ui.count.textContent = '(0)';
});

ui.copy.addEventListener('click', async () => {
  const text = ui.curl.textContent;
  try {
    await navigator.clipboard.writeText(text);
    ui.copyResult.textContent = 'Copied.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(ui.curl);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    ui.copyResult.textContent = 'Selected: press Ctrl+C / ⌘C to copy.';
  }
  setTimeout(() => { ui.copyResult.textContent = ''; }, 3000);
});

ui.subForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const channel = ui.channel.value.trim();
  if (!channel) return;
  const pending = client.subscribe(channel);
  showChannels();
  try {
    await pending;
    ui.channel.value = '';
  } catch (err) {
    note(`Subscribe to ${channel} failed: ${err.message}`);
  }
  showChannels();
});

firstToken.then(
  (t) => {
    ui.curl.textContent = t.curl;
    ui.user.textContent = t.user;
  },
  (err) => {
    ui.curl.textContent = err.message;
    setStatus('error', err.message);
  },
);
client.connect();
