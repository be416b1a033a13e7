// Package client is the Go subscriber client of hookwire: it connects to
// GET /v1/ws, reconnects with exponential backoff and full jitter, resumes
// from the last cursor it processed (on any replica), re-subscribes its
// channels and drops repeats by event id, so a caller sees every event
// once, in order, or is told with OnReset that history is gone.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Event is one delivered event.
type Event struct {
	ID      string          `json:"id"`
	Cursor  string          `json:"cursor"`
	Type    string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data"`
	Time    time.Time       `json:"time"`
}

// Options configure a Client. URLs and one of Token or TokenFunc are
// required.
type Options struct {
	// URLs are the servers' base URLs (http, https, ws or wss), tried in
	// turn on each reconnect: any replica of a cluster will do.
	URLs []string
	// Token is a static subscriber JWT. TokenFunc, when set, is called
	// before every connection instead, so expired tokens are renewed.
	Token     string
	TokenFunc func(ctx context.Context) (string, error)
	// Channels to subscribe to on every connection.
	Channels []string
	// Since is the cursor to resume after on the first connection.
	Since string
	// OnEvent is called for every new event, in order, on Run's
	// goroutine. The event's cursor becomes the resume point only after
	// OnEvent returns.
	OnEvent func(Event)
	// OnReset is called when the server says the history since the last
	// cursor is gone: reload your state.
	OnReset func(reason string)
	// OnConnect is called after each welcome, with the connection id.
	OnConnect func(conn string)
	// OnDisconnect is called when a connection ends or fails, with why
	// (a *websocket.CloseError carries the server's close code).
	OnDisconnect func(err error)
	// OnFrame, when set, sees every text frame the server sent, as it came
	// off the wire, before it is parsed or a repeat is dropped: for tests
	// and diagnostics. It runs on Run's goroutine; frame is valid only
	// during the call.
	OnFrame func(frame []byte)
	// BaseBackoff and MaxBackoff bound the reconnect delay (500ms, 30s).
	BaseBackoff, MaxBackoff time.Duration
	// Remember is how many recent event ids are kept to drop repeats
	// (default 10,000).
	Remember int
	Dialer   *websocket.Dialer
	Logger   *slog.Logger
}

// ErrRejected is returned by Run when the server refuses the connection
// for good (401 or 403 with a static token).
var ErrRejected = errors.New("connection rejected")

// Client is a reconnecting subscriber. Its methods are safe for concurrent
// use; Run must be called once.
type Client struct {
	opts Options

	mu       sync.Mutex // guards cursor, channels, ws
	cursor   string
	channels []string
	ws       *websocket.Conn
	wmu      sync.Mutex // serialises writes to ws

	seen  map[string]struct{}
	order []string // ring of seen ids, oldest first
}

// New returns a Client for opts.
func New(opts Options) *Client {
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Remember <= 0 {
		opts.Remember = 10000
	}
	if opts.Dialer == nil {
		opts.Dialer = websocket.DefaultDialer
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{opts: opts, cursor: opts.Since, channels: slices.Clone(opts.Channels), seen: make(map[string]struct{})}
}

// Cursor returns the cursor of the last event processed: where the next
// connection resumes.
func (c *Client) Cursor() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor
}

// Subscribe adds channel: it is joined on the current connection, if any,
// and on every later one.
func (c *Client) Subscribe(channel string) error {
	c.mu.Lock()
	if !slices.Contains(c.channels, channel) {
		c.channels = append(c.channels, channel)
	}
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return nil
	}
	return c.write(ws, map[string]string{"op": "subscribe", "channel": channel, "ref": channel})
}

func (c *Client) write(ws *websocket.Conn, v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return ws.WriteJSON(v)
}

// Run connects and reconnects until ctx is done, then returns ctx.Err(),
// or ErrRejected when the server refuses a static token.
func (c *Client) Run(ctx context.Context) error {
	attempt := 0
	for i := 0; ; i++ {
		u := c.opts.URLs[i%len(c.opts.URLs)]
		welcomed, err := c.session(ctx, u)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.opts.OnDisconnect != nil {
			c.opts.OnDisconnect(err)
		}
		if errors.Is(err, ErrRejected) && c.opts.TokenFunc == nil {
			return err
		}
		if welcomed {
			attempt = 0
		}
		delay := c.backoff(attempt)
		var ce *websocket.CloseError
		if errors.As(err, &ce) && (ce.Code == websocket.CloseGoingAway || ce.Code == websocket.CloseTryAgainLater) {
			// The server asked us to go elsewhere or catch up: soon.
			delay = rand.N(250 * time.Millisecond)
		}
		attempt++
		c.opts.Logger.Debug("reconnecting", "url", u, "delay", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max, base·2ⁿ)].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.MaxBackoff
	if attempt < 30 {
		d = min(d, c.opts.BaseBackoff<<attempt)
	}
	return rand.N(d + 1)
}

// session runs one connection. It reports whether a welcome arrived.
func (c *Client) session(ctx context.Context, base string) (welcomed bool, err error) {
	tok := c.opts.Token
	if c.opts.TokenFunc != nil {
		if tok, err = c.opts.TokenFunc(ctx); err != nil {
			return false, fmt.Errorf("token: %w", err)
		}
	}
	u, err := wsURL(base)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	q := url.Values{}
	if c.cursor != "" {
		q.Set("since", c.cursor)
	}
	if len(c.channels) > 0 {
		q.Set("channels", strings.Join(c.channels, ","))
	}
	c.mu.Unlock()
	u.RawQuery = q.Encode()
	ws, resp, err := c.opts.Dialer.DialContext(ctx, u.String(), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return false, fmt.Errorf("%w: %s: %s", ErrRejected, resp.Status, body)
			}
			return false, fmt.Errorf("dial: %s: %s", resp.Status, body)
		}
		return false, err
	}
	c.mu.Lock()
	c.ws = ws
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.ws = nil
		c.mu.Unlock()
		ws.Close()
	}()
	stop := context.AfterFunc(ctx, func() {
		c.wmu.Lock()
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		ws.Close()
	})
	defer stop()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return welcomed, err
		}
		if c.opts.OnFrame != nil {
			c.opts.OnFrame(b)
		}
		f, err := parseFrame(b)
		if err != nil {
			c.opts.Logger.Warn("unreadable server frame", "err", err)
			continue
		}
		switch f.Type {
		case "welcome":
			welcomed = true
			c.mu.Lock()
			if c.cursor == "" {
				// A fresh connection is complete from this position.
				c.cursor = f.Cursor
			}
			c.mu.Unlock()
			if c.opts.OnConnect != nil {
				c.opts.OnConnect(f.Conn)
			}
		case "event":
			c.deliver(f.Event)
		case "reset":
			c.mu.Lock()
			c.cursor = ""
			c.mu.Unlock()
			if c.opts.OnReset != nil {
				c.opts.OnReset(f.Reason)
			}
		case "error":
			c.opts.Logger.Warn("server error frame", "code", f.Code, "message", f.Msg)
		}
	}
}

// frame is what the client reads of a server frame.
type frame struct {
	Type   string
	Conn   string
	Cursor string
	Reason string
	Code   string
	Msg    string
	Event  Event // for an "event" frame
}

// parseFrame reads one server frame: a JSON object with a string "type";
// an "event" frame also needs a non-empty id and cursor. Members the client
// does not know are ignored, so newer servers may add some.
func parseFrame(b []byte) (frame, error) {
	var f struct {
		Type   string `json:"type"`
		Conn   string `json:"conn"`
		Cursor string `json:"cursor"`
		Reason string `json:"reason"`
		Code   string `json:"code"`
		Msg    string `json:"message"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	if f.Type == "" {
		return frame{}, errors.New(`frame without a "type"`)
	}
	out := frame{Type: f.Type, Conn: f.Conn, Cursor: f.Cursor, Reason: f.Reason, Code: f.Code, Msg: f.Msg}
	if f.Type == "event" {
		if err := json.Unmarshal(b, &out.Event); err != nil {
			return frame{}, err
		}
		if out.Event.ID == "" || out.Event.Cursor == "" {
			return frame{}, errors.New("event frame without an id or a cursor")
		}
	}
	return out, nil
}

func (c *Client) deliver(ev Event) {
	if _, dup := c.seen[ev.ID]; dup {
		return
	}
	c.seen[ev.ID] = struct{}{}
	c.order = append(c.order, ev.ID)
	if len(c.order) > c.opts.Remember {
		delete(c.seen, c.order[0])
		c.order = c.order[1:]
	}
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ev)
	}
	c.mu.Lock()
	c.cursor = ev.Cursor
	c.mu.Unlock()
}

func wsURL(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("URL %q: want http, https, ws or wss", base)
	}
	if !strings.HasSuffix(u.Path, "/v1/ws") {
		u.Path += "/v1/ws"
	}
	return u, nil
}
