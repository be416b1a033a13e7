// Type declarations for hookwire.js, the browser (and Node) client of
// hookwire's WebSocket API, GET /v1/ws (asyncapi.yaml). They need no DOM
// library: the client takes any WebSocket class.

/** `welcome`, the first frame of every connection. */
export interface WelcomeFrame {
  type: 'welcome';
  user: string;
  conn: string;
  /** Where this connection's view starts: a resume point before any event. */
  cursor?: string;
}

/** One delivered event. `T` is the type of its `data`. */
export interface EventFrame<T = unknown> {
  type: 'event';
  /** The event id: the idempotency key, and what the client dedupes by. */
  id: string;
  /** Opaque resume point (at most 512 bytes): pass it as `since`. */
  cursor: string;
  /** The event type, e.g. "balance.updated". */
  event: string;
  /** Absent for user-addressed events without a channel. */
  channel?: string;
  data: T;
  /** RFC 3339 time the event was accepted (or a CloudEvent's `time`). */
  time: string;
  /** A CloudEvent's `source`. */
  source?: string;
  /** W3C trace context of the event's trace. */
  traceparent?: string;
}

export interface SubscribedFrame {
  type: 'subscribed';
  channel: string;
  /** Absent when the connection URL already carried the channel. */
  ref?: string;
}

export interface UnsubscribedFrame {
  type: 'unsubscribed';
  channel: string;
  ref?: string;
}

export interface PongFrame {
  type: 'pong';
  ref: string;
}

/** The answer to refresh(): the session now ends at `exp`. */
export interface RefreshedFrame {
  type: 'refreshed';
  /** RFC 3339: the new token's expiry. */
  exp: string;
  ref: string;
}

/** The requested history is gone: reload your state. */
export interface ResetFrame {
  type: 'reset';
  reason: 'history_expired' | (string & {});
}

export interface ErrorFrame {
  type: 'error';
  code: 'forbidden' | 'bad_request' | 'rate_limited' | 'invalid_token' | 'unavailable' | 'bad_frame' | (string & {});
  message: string;
  ref?: string;
}

export type ServerFrame<T = unknown> =
  | WelcomeFrame
  | EventFrame<T>
  | SubscribedFrame
  | UnsubscribedFrame
  | PongFrame
  | RefreshedFrame
  | ResetFrame
  | ErrorFrame;

/** The Error a subscribe(), unsubscribe() or ping() promise rejects with. */
export interface HookwireError extends Error {
  /** The server's error code, when the server refused the request. */
  code?: ErrorFrame['code'];
  /** The server's `error` frame, when the server refused the request. */
  frame?: ErrorFrame;
}

/** Why the client is about to reconnect. */
export interface ReconnectDetail {
  /** Reconnect attempts since the last welcome. */
  attempt: number;
  /** Delay before this attempt: uniform in [0, min(maxBackoffMs, baseBackoffMs * 2^attempt)], below 250 ms after a 1001 or 1013. */
  delayMs: number;
  /** The WebSocket close code, 0 when no socket was made (getToken failed). */
  code: number;
  reason: string;
  /** What failed, when getToken threw or the WebSocket constructor did. */
  error?: unknown;
}

/** onStatus's arguments: a status and its detail. */
export type StatusArgs =
  | [status: 'connecting', detail: { attempt: number }]
  | [status: 'open', detail: WelcomeFrame]
  | [status: 'reconnecting', detail: ReconnectDetail]
  | [status: 'closed', detail: Record<string, never>];

export type Status = StatusArgs[0];

/** Any WebSocket class: the browser's, Node's (22+), or the `ws` package's. */
export type WebSocketClass = new (url: string) => object;

export interface HookwireOptions<T = unknown> {
  /** ws:// or wss:// URL of /v1/ws; default: /v1/ws on the page's host. */
  url?: string;
  /** A static subscriber token (JWT). */
  token?: string;
  /** Returns a fresh token; called before every connect. */
  getToken?: () => string | Promise<string>;
  /** Channels to subscribe to on every connection. */
  channels?: string[];
  /** Initial cursor: resume after this event. */
  since?: string;
  /**
   * One event, at most once per id (among the last 1000). Events are handled one at a time, in
   * order; a returned promise is awaited. The cursor moves past the event only after this returned
   * or its promise resolved; if it throws or rejects, the event counts as not processed.
   */
  onEvent?: (frame: EventFrame<T>) => unknown;
  onStatus?: (...args: StatusArgs) => void;
  /** The requested history is gone: reload your state. The cursor is reset. */
  onReset?: (reason: ResetFrame['reason']) => void;
  /** An `error` frame that answers no pending request. */
  onError?: (frame: ErrorFrame) => void;
  /** Every frame received, before it is handled (debugging). */
  onFrame?: (frame: ServerFrame<T>) => void;
  /** First reconnect delay cap; default 500. */
  baseBackoffMs?: number;
  /** Largest reconnect delay; default 30000. */
  maxBackoffMs?: number;
  /** WebSocket implementation; default: globalThis.WebSocket. */
  WebSocket?: WebSocketClass;
}

/** A hookwire subscriber connection that reconnects and resumes by itself. */
export declare class HookwireClient<T = unknown> {
  constructor(options?: HookwireOptions<T>);
  /** The resume point: cursor of the last event onEvent finished, or null. */
  readonly cursor: string | null;
  /** Channels included in the next connection. */
  readonly channels: string[];
  /** Starts connecting (and reconnecting). Calling it while running does nothing. */
  connect(): void;
  /** Closes the connection for good: no reconnect; pending promises are rejected. */
  close(): void;
  /**
   * Subscribes to a channel, now and on every later connection. Rejects with a HookwireError
   * whose `frame` is the server's `error` frame. While disconnected, it settles after the next
   * connection's welcome.
   */
  subscribe(channel: string, options?: { since?: string }): Promise<SubscribedFrame>;
  /** Unsubscribes from a channel, now and on later connections. */
  unsubscribe(channel: string): Promise<UnsubscribedFrame>;
  /** Round trip to the server; rejects when not connected. */
  ping(): Promise<PongFrame>;
  /**
   * Replaces the open connection's token (the `refresh` op) before its `exp`, so the session
   * outlives it; without an argument the token comes from getToken. Rejects when not connected,
   * or with a HookwireError whose code is `invalid_token`.
   */
  refresh(token?: string): Promise<RefreshedFrame>;
}

export default HookwireClient;
