// A typed use of @hookwire/client: `tsc --noEmit` must accept it as it is,
// and every @ts-expect-error line must really be an error (the declarations
// are not `any`). No DOM library: the client needs none.
import { HookwireClient } from '@hookwire/client';
import Default, { type EventFrame, type HookwireError, type StatusArgs, type WelcomeFrame } from '@hookwire/client';

interface Balance {
  balance: string;
}

class FakeWebSocket {
  constructor(readonly url: string) {}
}

const seen: string[] = [];
const hw = new HookwireClient<Balance>({
  url: 'wss://hookwire.example.com/v1/ws',
  getToken: async () => 'token',
  channels: ['prices.EURUSD'],
  since: 'cursor',
  WebSocket: FakeWebSocket,
  onEvent: async (frame) => {
    const balance: string = frame.data.balance;
    const id: string = frame.id;
    const channel: string | undefined = frame.channel;
    seen.push(id, balance, channel ?? '');
  },
  onStatus: (status, detail) => {
    if (status === 'open') {
      const w: WelcomeFrame = detail;
      seen.push(w.user, w.conn);
    } else if (status === 'reconnecting') {
      const ms: number = detail.delayMs;
      const code: number = detail.code;
      seen.push(String(ms + code));
    }
  },
  onReset: (reason) => seen.push(reason),
  onError: (frame) => seen.push(frame.code, frame.message),
  onFrame: (frame) => {
    if (frame.type === 'event') seen.push(frame.event);
  },
  baseBackoffMs: 500,
  maxBackoffMs: 30_000,
});
hw.connect();
const cursor: string | null = hw.cursor;
const channels: string[] = hw.channels;

async function requests(): Promise<void> {
  const sub = await hw.subscribe('news', { since: cursor ?? undefined });
  const ch: string = sub.channel;
  const unsub = await hw.unsubscribe('news');
  const pong = await hw.ping();
  const refreshed = await hw.refresh();
  const until: string = (await hw.refresh('newer.token')).exp;
  seen.push(refreshed.exp, until);
  seen.push(ch, unsub.type, pong.ref, ...channels);
  try {
    await hw.subscribe('forbidden.channel');
  } catch (e) {
    const err = e as HookwireError;
    seen.push(err.code ?? '', err.frame?.message ?? '');
  }
}
void requests();
hw.close();

const Same: typeof HookwireClient = Default;
const untyped = new Same({ token: 't' });
const handler = (f: EventFrame<{ n: number }>) => f.data.n;
new HookwireClient<{ n: number }>({ onEvent: handler });
const args: StatusArgs = ['connecting', { attempt: 1 }];
seen.push(String(args[1]), String(untyped.cursor));

// @ts-expect-error channels is a list
new HookwireClient({ channels: 'prices.EURUSD' });
// @ts-expect-error the option is onEvent
new HookwireClient({ onMessage: () => {} });
// @ts-expect-error data is typed by the type parameter
new HookwireClient<Balance>({ onEvent: (f) => f.data.amount });
// @ts-expect-error cursor is read-only
hw.cursor = 'x';
// @ts-expect-error subscribe takes a channel name
void hw.subscribe();
// @ts-expect-error an open status carries the welcome frame
const bad: StatusArgs = ['open', { attempt: 1 }];
// @ts-expect-error the WebSocket option is a class
new HookwireClient({ WebSocket: 'ws' });
// @ts-expect-error refresh takes a token string
void hw.refresh(42);
void bad;
