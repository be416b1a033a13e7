// Helpers for the client tests: real `hookwire serve --dev` processes, tokens
// and a publisher. web/npm_test.go runs these tests and sets:
//   HOOKWIRE_BIN             the hookwire binary
//   HOOKWIRE_TEST_REDIS_URL  a redis-server of its own (the in-memory broker without it)
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';

export const API_KEY = 'npm-test-key-0123456789';
export const JWT_SECRET = 'npm-test-secret-0123456789abcdef0123';
const BIN = process.env.HOOKWIRE_BIN;
export const REDIS_URL = process.env.HOOKWIRE_TEST_REDIS_URL || '';
if (!BIN) throw new Error('HOOKWIRE_BIN is not set: run these tests with go test ./web/');

// Streams are named per run, so that a reused Redis holds no old events or ids.
const RUN = Date.now().toString(36);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `hookwire serve --dev` on port, with a clean environment: only the
 * variables set here. redis: the shared redis-server (true) or the in-memory
 * broker (false). stream: the Redis key prefix, one per test.
 */
export async function startServer(port, { redis = true, stream = 'npm' } = {}) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HOOKWIRE_API_KEYS: API_KEY,
    HOOKWIRE_JWT_SECRET: JWT_SECRET,
    HOOKWIRE_STREAM: `${stream}-${RUN}`,
    HOOKWIRE_DRAIN_TIMEOUT: '1s',
    HOOKWIRE_PING_INTERVAL: '2s',
  };
  if (redis) {
    if (!REDIS_URL) throw new Error('HOOKWIRE_TEST_REDIS_URL is not set');
    env.HOOKWIRE_REDIS_URL = REDIS_URL;
  }
  const child = spawn(BIN, ['serve', '--dev', '--listen', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (b) => { log += b; });
  child.stderr.on('data', (b) => { log += b; });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const server = {
    base,
    ws: `ws://127.0.0.1:${port}/v1/ws`,
    get log() { return log; },
    exited,
    /** SIGTERM (a drain), then wait for the exit. */
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const res = await fetch(base + '/readyz');
      if (res.ok) return server;
    } catch { /* not listening yet */ }
    if (child.exitCode !== null) throw new Error('hookwire exited: ' + log);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('hookwire did not get ready: ' + log);
    }
    await sleep(50);
  }
}

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/** An HS256 subscriber token for sub, valid for ttlMs. */
export function token(sub, { ttlMs = 3600000, channels } = {}) {
  const claims = { sub, exp: Math.floor((Date.now() + ttlMs) / 1000) };
  if (channels) claims.channels = channels;
  const head = b64url({ alg: 'HS256', typ: 'JWT' }) + '.' + b64url(claims);
  return head + '.' + createHmac('sha256', JWT_SECRET).update(head).digest('base64url');
}

/** POSTs one event; resolves with the answer's JSON, throws unless 202. */
export async function publish(server, event) {
  const res = await fetch(server.base + '/v1/events', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'test.event', data: {}, ...event }),
  });
  const body = await res.json();
  if (res.status !== 202) throw new Error(`POST /v1/events: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** Waits until cond() holds, polling; throws with what() after ms. */
export async function until(cond, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + (typeof what === 'function' ? what() : what));
    await sleep(10);
  }
}

/** A client's observable life: events handled, raw event frames, statuses. */
export function recorder() {
  const r = { events: [], frames: [], statuses: [], resets: [] };
  r.options = {
    onEvent: (f) => { r.events.push(f); },
    onFrame: (f) => { if (f.type === 'event') r.frames.push(f); },
    onStatus: (status, detail) => { r.statuses.push({ status, ...detail }); },
    onReset: (reason) => { r.resets.push(reason); },
  };
  r.ids = () => r.events.map((f) => f.id);
  r.opens = () => r.statuses.filter((s) => s.status === 'open').length;
  return r;
}
