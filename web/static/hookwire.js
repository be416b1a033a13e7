// hookwire.js: a small, dependency-free client for hookwire's WebSocket API
// (GET /v1/ws). An ES module for browsers; it also runs in Node >= 22 (global
// WebSocket), or anywhere else when given options.WebSocket.
//
//   import { HookwireClient } from './hookwire.js';
//   const hw = new HookwireClient({
//     getToken: async () => (await (await fetch('/my/token')).json()).token,
//     onEvent: (frame) => render(frame.event, frame.data),
//     onReset: () => reloadEverything(),
//   });
//   hw.connect();
//
// Delivery is at-least-once: the client drops repeats by event id, remembers
// the cursor of the last event onEvent finished with, and resumes from it
// (`since`) whenever it reconnects.

const SEEN_MAX = 1000; // event ids remembered for dropping repeats
const STABLE_MS = 10000; // a connection open this long resets the backoff

/**
 * @typedef {object} HookwireOptions
 * @property {string} [url] ws:// or wss:// URL of /v1/ws; default: /v1/ws on the page's host.
 * @property {string} [token] a static subscriber token (JWT).
 * @property {() => Promise<string>} [getToken] returns a fresh token; called before every connect.
 * @property {string[]} [channels] channels to subscribe to on every connection.
 * @property {string} [since] initial cursor: resume after this event.
 * @property {(frame: object) => (void|Promise<void>)} [onEvent] one `event` frame. Events are handled
 *   one at a time, in order; a returned promise is awaited (it may await subscribe() or ping()). The
 *   cursor moves past the event only after onEvent returned or its promise resolved; if it throws or
 *   rejects, the event counts as not processed.
 * @property {(status: 'connecting'|'open'|'closed'|'reconnecting', detail: object) => void} [onStatus]
 *   connecting {attempt}; open = the welcome frame; reconnecting {attempt, delayMs, code, reason, error};
 *   closed {} after close().
 * @property {(reason: string) => void} [onReset] the requested history is gone: reload your state.
 * @property {(frame: object) => void} [onError] an `error` frame that answers no pending request.
 * @property {(frame: object) => void} [onFrame] every frame received, before it is handled (debugging).
 * @property {number} [baseBackoffMs=500] first reconnect delay cap.
 * @property {number} [maxBackoffMs=30000] largest reconnect delay.
 * @property {typeof WebSocket} [WebSocket] WebSocket implementation; default: globalThis.WebSocket.
 */

/** A hookwire subscriber connection that reconnects and resumes by itself. */
export class HookwireClient {
  /** @param {HookwireOptions} [options] */
  constructor(options = {}) {
    this._o = options;
    this._url = options.url || defaultURL();
    this._getToken = options.getToken || (async () => options.token || '');
    this._WS = options.WebSocket || globalThis.WebSocket;
    if (!this._WS) throw new Error('hookwire: no WebSocket implementation; pass options.WebSocket');
    this._channels = new Set(options.channels || []);
    this._cursor = options.since || null;
    this._base = options.baseBackoffMs ?? 500;
    this._cap = options.maxBackoffMs ?? 30000;
    this._seen = new Set(); // the last SEEN_MAX event ids, oldest first in the ring from _ringPos
    this._ring = [];
    this._ringPos = 0;
    this._pending = new Map(); // ref -> request sent, awaiting its answer
    this._deferred = []; // subscribe/unsubscribe requests waiting for the next welcome
    this._ref = this._attempt = 0;
    this._gen = 0; // bumped by every connect and close(): stale callbacks check it
    this._ws = this._timer = null;
    this._welcomed = false;
    this._stopped = true;
    this._queue = Promise.resolve(); // events and resets, handled one at a time
  }

  /** The resume point: cursor of the last event onEvent finished, or null. @returns {string|null} */
  get cursor() { return this._cursor; }

  /** Channels included in the next connection. @returns {string[]} */
  get channels() { return [...this._channels]; }

  /** Starts connecting (and reconnecting). Calling it while running does nothing. */
  connect() {
    if (!this._stopped) return;
    this._stopped = false;
    this._open();
  }

  /** Closes the connection for good: no reconnect; pending promises are rejected. */
  close() {
    this._stopped = true;
    this._gen++;
    clearTimeout(this._timer);
    const ws = this._ws;
    this._ws = this._timer = null;
    if (ws) try { ws.close(1000); } catch { /* already closing */ }
    const err = new Error('hookwire: client closed');
    for (const r of [...this._pending.values(), ...this._deferred.splice(0)]) r.reject(err);
    this._pending.clear();
    this._status('closed', {});
  }

  /**
   * Subscribes to a channel, now and on every later connection. Resolves with the `subscribed` frame,
   * rejects with an Error whose `frame` is the server's `error` frame. While disconnected, it settles
   * after the next connection's welcome.
   * @param {string} channel
   * @param {{since?: string}} [options] replay the channel's events after this cursor
   * @returns {Promise<object>}
   */
  subscribe(channel, { since } = {}) {
    this._channels.add(channel);
    return this._request('subscribe', since ? { channel, since } : { channel });
  }

  /** Unsubscribes from a channel, now and on later connections. @param {string} channel @returns {Promise<object>} */
  unsubscribe(channel) {
    this._channels.delete(channel);
    return this._request('unsubscribe', { channel });
  }

  /** Round trip to the server; rejects when not connected. @returns {Promise<object>} the `pong` frame */
  ping() { return this._request('ping', {}); }

  /**
   * Replaces the open connection's token (the `refresh` op), so the session outlives the token it
   * was opened with: call it before that token's `exp`. Without an argument the token comes from
   * getToken. Resolves with the `refreshed` frame; rejects when not connected, or with an Error
   * whose `code` is `invalid_token`. Later connections still call getToken.
   * @param {string} [token]
   * @returns {Promise<object>}
   */
  async refresh(token) {
    if (token === undefined) token = await this._getToken();
    if (!this._ws || !this._welcomed) throw new Error('hookwire: not connected');
    return this._request('refresh', { token });
  }

  async _open() {
    const gen = ++this._gen;
    this._status('connecting', { attempt: this._attempt });
    let token;
    try {
      token = await this._getToken();
    } catch (error) {
      if (gen === this._gen && !this._stopped) this._retry(0, '', error);
      return;
    }
    if (gen !== this._gen || this._stopped) return;
    const u = new URL(this._url);
    if (token) u.searchParams.set('token', token);
    this._urlChannels = new Set(this._channels);
    if (this._channels.size) u.searchParams.set('channels', [...this._channels].join(','));
    if (this._cursor) u.searchParams.set('since', this._cursor);
    let ws;
    try {
      ws = new this._WS(u.toString());
    } catch (error) {
      this._retry(0, '', error);
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    let openedAt = 0;
    ws.onopen = () => { openedAt = Date.now(); };
    ws.onmessage = (m) => { if (ws === this._ws) this._receive(m.data); };
    const lost = (code, reason) => {
      if (ws !== this._ws) return; // already handled, or replaced
      this._ws = null;
      this._welcomed = false;
      if (openedAt && Date.now() - openedAt >= STABLE_MS) this._attempt = 0;
      this._retry(code, reason);
    };
    // A failed handshake: browsers fire close after error, Node 20's WebSocket only error.
    ws.onerror = () => { if (!openedAt) lost(1006, ''); };
    ws.onclose = (e) => lost(e.code, e.reason);
  }

  _retry(code, reason, error) {
    // Requests in flight die with the connection. Subscriptions are in the next connection's URL
    // anyway, so (un)subscribe promises settle at its welcome; pings fail.
    for (const r of this._pending.values()) {
      if (r.op === 'ping' || r.op === 'refresh') r.reject(new Error('hookwire: connection lost'));
      else this._deferred.push(r);
    }
    this._pending.clear();
    // 1001 (node draining) and 1013 (too slow): the server is fine, come back almost at once.
    // Otherwise full jitter: uniform in [0, min(cap, base * 2^attempt)].
    const quick = code === 1001 || code === 1013;
    const ceiling = quick ? 250 : Math.min(this._cap, this._base * 2 ** Math.min(this._attempt, 30));
    const delayMs = Math.floor(Math.random() * ceiling);
    this._attempt++;
    this._status('reconnecting', { attempt: this._attempt, delayMs, code, reason, error });
    this._timer = setTimeout(() => { this._timer = null; this._open(); }, delayMs);
  }

  _receive(raw) {
    let f;
    try { f = JSON.parse(raw); } catch { f = null; }
    if (!f || typeof f !== 'object') {
      this._emit('onError', { type: 'error', code: 'bad_frame', message: 'unparseable frame from server' });
      return;
    }
    this._emit('onFrame', f);
    switch (f.type) {
      case 'event':
      case 'reset': // in order with the events, one at a time
        this._queue = this._queue.then(() => this._ordered(f))
          .catch((err) => console.error('hookwire: onEvent threw; the event stays unprocessed', err));
        break;
      // The rest is handled at once, so that onEvent may await subscribe() or ping().
      case 'welcome':
        // Where a fresh connection is complete from: a good resume point before any event arrives.
        if (f.cursor && !this._cursor) this._cursor = f.cursor;
        this._attempt = 0;
        this._welcomed = true;
        this._flushDeferred();
        this._status('open', f);
        break;
      case 'error':
        if (!this._settle(f, false)) this._emit('onError', f);
        break;
      case 'unsubscribed':
        // Without a ref: a refreshed token no longer grants the channel. Do not ask for it again.
        if (!this._settle(f, true) && f.ref == null) this._channels.delete(f.channel);
        break;
      default: // subscribed, pong, refreshed
        this._settle(f, true);
    }
  }

  async _ordered(f) {
    if (f.type === 'reset') {
      this._cursor = null;
      this._emit('onReset', f.reason);
      return;
    }
    if (f.id != null && this._seen.has(f.id)) return;
    if (this._o.onEvent) await this._o.onEvent(f); // if it throws, the cursor stays
    if (f.id != null) this._remember(f.id);
    if (f.cursor) this._cursor = f.cursor;
  }

  _remember(id) {
    if (this._ring.length < SEEN_MAX) this._ring.push(id);
    else {
      this._seen.delete(this._ring[this._ringPos]);
      this._ring[this._ringPos] = id;
      this._ringPos = (this._ringPos + 1) % SEEN_MAX;
    }
    this._seen.add(id);
  }

  _request(op, fields) {
    return new Promise((resolve, reject) => {
      const req = { op, fields, resolve, reject };
      if (this._ws && this._welcomed) this._send(req);
      else if (op === 'ping' || op === 'refresh') reject(new Error('hookwire: not connected'));
      else this._deferred.push(req);
    });
  }

  _send(req) {
    const ref = String(++this._ref);
    this._pending.set(ref, req);
    this._ws.send(JSON.stringify({ op: req.op, ...req.fields, ref }));
  }

  _flushDeferred() {
    for (const req of this._deferred.splice(0)) {
      const { op, fields: { channel } } = req;
      const inURL = this._urlChannels.has(channel);
      // The connection URL already says what the server does for this channel; ask only if it differs.
      if (op === 'subscribe' ? inURL : !inURL) req.resolve({ type: op + 'd', channel });
      else this._send(req);
    }
  }

  _settle(f, ok) {
    const req = f.ref != null && this._pending.get(String(f.ref));
    if (!req) return false;
    this._pending.delete(String(f.ref));
    if (ok) {
      req.resolve(f);
      return true;
    }
    if (req.op === 'subscribe') this._channels.delete(req.fields.channel);
    const err = new Error(`hookwire: ${f.code || 'error'}: ${f.message || ''}`);
    err.code = f.code;
    err.frame = f;
    req.reject(err);
    return true;
  }

  _status(status, detail) { this._emit('onStatus', status, detail); }

  _emit(name, ...args) {
    const fn = this._o[name];
    if (!fn) return;
    try { fn(...args); } catch (err) { console.error(`hookwire: ${name} threw`, err); }
  }
}

function defaultURL() {
  if (typeof location === 'undefined') throw new Error('hookwire: options.url is required outside a browser');
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/ws`;
}

export default HookwireClient;
