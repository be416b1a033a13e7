// The client against real `hookwire serve --dev` processes: reconnect with
// jitter, resume, dedupe, reset, token refresh, subscribe after reconnect.
// Run by web/npm_test.go (go test ./web/), which builds the server and
// starts Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { HookwireClient } from '../static/hookwire.js';
import { freePort, publish, recorder, startServer, token, until } from './server.mjs';

const ids = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

test('resumes across a restart with nothing lost or repeated, reconnecting with jitter', async (t) => {
  const stream = 'npm-resume';
  const port = await freePort();
  let s1 = await startServer(port, { stream });
  const r = recorder();
  let tokens = 0;
  const c = new HookwireClient({
    url: s1.ws, getToken: async () => { tokens++; return token('u1'); },
    baseBackoffMs: 50, maxBackoffMs: 400, ...r.options,
  });
  t.after(() => c.close());
  c.connect();
  await until(() => r.opens() === 1, 'the first welcome');
  for (const id of ids('a', 0, 10)) await publish(s1, { id, users: ['u1'] });
  await until(() => r.events.length === 10, () => `10 events, got ${r.ids()}`);

  // Down: the first server drains (1001) and exits; a second one on
  // another port, same Redis, accepts events meanwhile.
  await s1.stop();
  const other = await startServer(await freePort(), { stream });
  t.after(() => other.stop());
  for (const id of ids('a', 10, 20)) await publish(other, { id, users: ['u1'] });
  await new Promise((res) => setTimeout(res, 800)); // a few failed attempts
  s1 = await startServer(port, { stream });
  t.after(() => s1.stop());
  await until(() => r.events.length >= 20, () => `20 events, got ${r.ids()}; statuses ${JSON.stringify(r.statuses)}`);
  for (const id of ids('a', 20, 25)) await publish(other, { id, users: ['u1'] });
  await until(() => r.events.length >= 25, () => `25 events, got ${r.ids()}`);

  assert.deepEqual(r.ids(), ids('a', 0, 25), 'every event once, in order');
  assert.equal(c.cursor, r.events.at(-1).cursor, 'the cursor is the last event handled');
  assert.equal(r.opens(), 2, 'one reconnect that succeeded');
  assert.equal(tokens, r.statuses.filter((s) => s.status === 'connecting').length, 'a token per connect');

  // The reconnect: first the drain's 1001 (quick, under 250 ms), then
  // refused connections with growing, jittered delays.
  const retries = r.statuses.filter((s) => s.status === 'reconnecting');
  assert.equal(retries[0].code, 1001, 'the drain closes with 1001');
  assert.ok(retries[0].delayMs < 250, `quick reconnect after 1001: ${retries[0].delayMs} ms`);
  const failed = retries.slice(1);
  assert.ok(failed.length >= 3, `${failed.length} failed attempts while the server was down`);
  for (const s of failed) {
    const ceiling = Math.min(400, 50 * 2 ** (s.attempt - 1));
    assert.ok(s.delayMs >= 0 && s.delayMs <= ceiling, `attempt ${s.attempt}: ${s.delayMs} ms, ceiling ${ceiling}`);
  }
  assert.ok(new Set(failed.map((s) => s.delayMs)).size > 1, `jitter: delays ${failed.map((s) => s.delayMs)}`);
  t.diagnostic(`reconnect delays (ms): ${retries.map((s) => `${s.code}:${s.delayMs}`).join(' ')}`);
});

test('drops repeated events by id when the server replays them', async (t) => {
  const port = await freePort();
  const s = await startServer(port, { stream: 'npm-dedupe' });
  t.after(() => s.stop());
  const r = recorder();
  let welcome;
  const c = new HookwireClient({
    url: s.ws, token: token('u2', { channels: ['prices.*'] }), channels: ['prices.EURUSD'], ...r.options,
    onStatus: (status, d) => { if (status === 'open') welcome = d; },
  });
  t.after(() => c.close());
  c.connect();
  await until(() => welcome, 'the welcome');
  for (const id of ids('p', 0, 3)) await publish(s, { id, channel: 'prices.EURUSD' });
  await until(() => r.events.length === 3, 'three channel events');

  // Subscribing again with since replays the channel's history on this
  // connection: the server sends the three events again, the client
  // hands none of them to onEvent.
  const sub = await c.subscribe('prices.EURUSD', { since: welcome.cursor });
  assert.equal(sub.type, 'subscribed');
  await publish(s, { id: 'p3', channel: 'prices.EURUSD' });
  await until(() => r.events.length === 4, () => `the fourth event, got ${r.ids()}`);
  assert.deepEqual(r.ids(), ids('p', 0, 4));
  const raw = r.frames.map((f) => f.id);
  assert.ok(raw.length > r.events.length, `the server repeated events (raw frames ${raw}); the dedupe was exercised`);
  t.diagnostic(`raw event frames ${raw.length}, handled ${r.events.length}`);
});

test('a reset when the history is gone: onReset, cursor cleared, live events continue', async (t) => {
  const port = await freePort();
  // The in-memory broker: a restart loses every event.
  let s = await startServer(port, { redis: false });
  const r = recorder();
  const c = new HookwireClient({ url: s.ws, getToken: async () => token('u3'), baseBackoffMs: 20, maxBackoffMs: 100, ...r.options });
  t.after(() => c.close());
  c.connect();
  await until(() => r.opens() === 1, 'the welcome');
  await publish(s, { id: 'r0', users: ['u3'] });
  await until(() => r.events.length === 1, 'the first event');
  const before = c.cursor;
  assert.ok(before);

  await s.stop();
  s = await startServer(port, { redis: false });
  t.after(() => s.stop());
  await until(() => r.resets.length === 1, () => `a reset; statuses ${JSON.stringify(r.statuses.slice(-3))}`);
  assert.equal(r.opens(), 2);
  await publish(s, { id: 'r1', users: ['u3'] });
  await until(() => r.events.length === 2, 'the event after the reset');
  assert.deepEqual(r.ids(), ['r0', 'r1']);
  assert.notEqual(c.cursor, before);
  assert.equal(c.cursor, r.events[1].cursor);
  t.diagnostic(`reset reason: ${r.resets[0]}`);
});

test('token refresh: an expired token closes with 1008, getToken gives a fresh one, nothing is lost', async (t) => {
  const port = await freePort();
  const s = await startServer(port, { stream: 'npm-refresh' });
  t.after(() => s.stop());
  const r = recorder();
  const issued = [];
  const c = new HookwireClient({
    url: s.ws,
    getToken: async () => { const tok = token('u4', { ttlMs: 1500 }); issued.push(tok); return tok; },
    baseBackoffMs: 20, maxBackoffMs: 100, ...r.options,
  });
  t.after(() => c.close());
  c.connect();
  await until(() => r.opens() === 1, 'the welcome');
  await publish(s, { id: 't0', users: ['u4'] });
  await until(() => r.statuses.some((x) => x.status === 'reconnecting' && x.code === 1008), 'the 1008 close at expiry', 5000);
  await publish(s, { id: 't1', users: ['u4'] }); // maybe while reconnecting: the resume brings it
  await until(() => r.opens() >= 2, 'the reconnect');
  await publish(s, { id: 't2', users: ['u4'] });
  await until(() => r.events.length >= 3, () => `three events, got ${r.ids()}`);
  assert.deepEqual(r.ids(), ['t0', 't1', 't2']);
  assert.ok(issued.length >= 2 && new Set(issued).size === issued.length, 'a fresh token per connect');
});

test('subscribe() holds across reconnects, also when called while disconnected', async (t) => {
  const stream = 'npm-subscribe';
  const port = await freePort();
  let s = await startServer(port, { stream });
  const r = recorder();
  const c = new HookwireClient({ url: s.ws, getToken: async () => token('u5', { channels: ['news.*'] }), baseBackoffMs: 20, maxBackoffMs: 100, ...r.options });
  t.after(() => c.close());
  c.connect();
  await until(() => r.opens() === 1, 'the welcome');
  const sub = await c.subscribe('news.x');
  assert.equal(sub.channel, 'news.x');
  assert.ok(sub.ref, 'asked the server (a ref)');
  await publish(s, { id: 'n0', channel: 'news.x' });
  await until(() => r.events.length === 1, 'the news.x event');

  await assert.rejects(c.subscribe('sports.y'), (err) => err.code === 'forbidden' && err.frame?.type === 'error');
  assert.deepEqual(c.channels, ['news.x'], 'a refused channel is not kept');

  await s.stop();
  const pending = c.subscribe('news.y'); // while disconnected
  s = await startServer(port, { stream });
  t.after(() => s.stop());
  assert.equal((await pending).channel, 'news.y');
  await until(() => r.opens() === 2, 'the reconnect');
  await publish(s, { id: 'n1', channel: 'news.x' });
  await publish(s, { id: 'n2', channel: 'news.y' });
  await until(() => r.events.length === 3, () => `both channels after the reconnect, got ${r.ids()}`);
  assert.deepEqual(r.ids(), ['n0', 'n1', 'n2']);
  assert.deepEqual(c.channels.sort(), ['news.x', 'news.y']);
  const pong = await c.ping();
  assert.equal(pong.type, 'pong');
});

test('refresh(): the session outlives its first token, on the same connection', async (t) => {
  const port = await freePort();
  const s = await startServer(port, { stream: 'npm-inband' });
  t.after(() => s.stop());
  const r = recorder();
  const c = new HookwireClient({ url: s.ws, getToken: async () => token('u6', { ttlMs: 1500 }), ...r.options });
  t.after(() => c.close());
  c.connect();
  await until(() => r.opens() === 1, 'the welcome');
  const refreshed = await c.refresh(token('u6', { ttlMs: 60000 }));
  assert.equal(refreshed.type, 'refreshed');
  assert.ok(Date.parse(refreshed.exp) > Date.now() + 30000, `exp ${refreshed.exp}`);
  await assert.rejects(c.refresh(token('someone-else')), (err) => err.code === 'invalid_token');
  await new Promise((res) => setTimeout(res, 2500)); // past the first token's exp
  await publish(s, { id: 'i0', users: ['u6'] });
  await until(() => r.events.length === 1, 'the event after the first exp');
  assert.equal(r.opens(), 1, 'no reconnect');
  assert.ok(!r.statuses.some((x) => x.status === 'reconnecting'), 'never closed');
});
