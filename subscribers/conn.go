package subscribers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
)

// Named values of one connection's life.
const (
	writeWait  = 10 * time.Second       // budget of one write
	closeGrace = 2 * time.Second        // wait for the client's close reply
	maxFrame   = 4 << 10                // largest client frame (contract: 4 KiB)
	queueLen   = 256                    // outgoing frames a connection may have queued
	replayWait = 30 * time.Second       // budget of a replay that makes no progress
	expirySlop = 500 * time.Millisecond // close a little after exp, not before
	// abuseLimit is how many frames in a row the rate limit may refuse
	// before the connection is closed.
	abuseLimit = 100
)

var (
	errClosing = fmt.Errorf("%w: closing", bridge.ErrConnClosed)
	errTooSlow = fmt.Errorf("%w: queue overflowed, closed with 1013", bridge.ErrSlowConsumer)
)

// out is one queued frame; ev is set for event frames, whose fan-out is
// told (ev.Done) when the frame was written or dropped.
type out struct {
	b  []byte
	ev *bridge.Event
}

// conn is one WebSocket connection. It is the bridge.Sink of its
// subscription: the fan-out queues frames with Send, which never blocks.
//
// An idle connection holds one goroutine, its reader. A writer goroutine
// exists only while there is something to write: push starts one when the
// queue goes from empty to not, and it exits when the queue is empty again,
// so the many idle connections of a replica cost no writer stacks. Pings
// and the token's expiry are timers; WriteControl is safe beside the writer.
type conn struct {
	ws     *websocket.Conn
	id     string
	claims auth.Claims // owned by the reader (refresh replaces it)
	logger *slog.Logger
	srv    *Server

	mu        sync.Mutex // guards queue, spare, writing, closeCode, closeText, flush, closeSent
	queue     []out
	spare     []out // the writer's drained slice, reused to save allocations
	writing   bool  // a writer goroutine is running
	closeCode int   // non-zero once the connection is being closed
	closeText string
	flush     bool // write what is queued before the close frame
	closeSent bool // the close frame was written (or the writer gave up)

	writers sync.WaitGroup // the writer goroutine, while one runs
	room    chan struct{}  // cap 1: the writer made room in the queue
	pinger  *time.Timer
	expiry  *time.Timer

	// Owned by the reader goroutine:
	limiter *rate.Limiter // client frames
	refused int           // frames refused by limiter since the last one let through

	sub *bridge.Subscription // set by the reader before it reads
}

// push queues f and makes sure a writer runs. force lets control frames
// (replies, reset) past the queue bound, so a client is always told why.
// It returns false when the queue is full or the connection is closing;
// the caller then still owns f.ev.
func (c *conn) push(f out, force bool) bool {
	c.mu.Lock()
	if c.closeCode != 0 || (!force && len(c.queue) >= queueLen) {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, f)
	c.startWriterLocked()
	c.mu.Unlock()
	return true
}

// startWriterLocked starts the writer goroutine unless one runs. c.mu is
// held.
func (c *conn) startWriterLocked() {
	if c.writing || c.closeSent {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

func (c *conn) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// done tells the fan-out of every event in frames that it was not written.
func done(frames []out, err error) {
	for _, f := range frames {
		if f.ev != nil {
			f.ev.Done(err)
		}
	}
}

// kick asks the writer to close the connection with code. With flush set,
// the frames already queued are written first (a drain); without, they
// are dropped (a slow consumer, whose queue may be long).
func (c *conn) kick(code int, text string, flush bool) {
	var dropped []out
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeText, c.flush = code, text, flush
		if !flush {
			dropped, c.queue = c.queue, nil
		}
		c.startWriterLocked()
	}
	c.mu.Unlock()
	done(dropped, errTooSlow)
	c.signal(c.room)
}

// discard refuses further frames and drops the queued ones: the
// connection is gone.
func (c *conn) discard(err error) {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode = websocket.CloseAbnormalClosure
	}
	c.closeSent = true
	dropped := c.queue
	c.queue = nil
	c.mu.Unlock()
	done(dropped, err)
	c.signal(c.room)
}

// Send implements bridge.Sink. It never blocks: a connection whose queue is
// full is closed with 1013, and its client resumes with its last cursor.
func (c *conn) Send(ev *bridge.Event) {
	if !c.push(out{ev.Frame(), ev}, false) {
		ev.Done(errTooSlow)
		c.Overflow()
	}
}

// Overflow implements bridge.Sink.
func (c *conn) Overflow() {
	c.mu.Lock()
	closing := c.closeCode != 0
	c.mu.Unlock()
	if !closing {
		c.srv.metrics.slowCloses.Add(bg, 1)
		c.logger.Warn("subscriber too slow, closing", "queue", queueLen)
		c.kick(websocket.CloseTryAgainLater, "too slow, resume with since", false)
	}
}

// SendWait implements bridge.Sink for replays: it waits for room.
func (c *conn) SendWait(ctx context.Context, ev *bridge.Event) error {
	timer := time.NewTimer(replayWait)
	defer timer.Stop()
	for {
		if c.push(out{ev.Frame(), ev}, false) {
			return nil
		}
		c.mu.Lock()
		closing := c.closeCode != 0
		c.mu.Unlock()
		if closing {
			return errClosing
		}
		select {
		case <-c.room:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			c.Overflow()
			return errTooSlow
		}
	}
}

// Reset implements bridge.Sink.
func (c *conn) Reset(reason string) {
	c.srv.metrics.resets.Add(bg, 1, metric.WithAttributes(attribute.String("reason", reason)))
	c.push(out{b: encode(resetFrame{Type: "reset", Reason: reason})}, true)
}

// take hands the queued frames to the writer, with the close request if
// any. When there is nothing to do it marks the writer stopped, under the
// same lock, so a later push starts a new one.
func (c *conn) take() (frames []out, code int, text string, flush, stop bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 && (c.closeCode == 0 || c.closeSent) {
		c.writing = false
		return nil, 0, "", false, true
	}
	frames = c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	if len(frames) > 0 {
		c.signal(c.room)
	}
	return frames, c.closeCode, c.closeText, c.flush, false
}

// giveBack returns the writer's slice for reuse, unless it grew large.
func (c *conn) giveBack(frames []out) {
	if cap(frames) > queueLen {
		return
	}
	clear(frames)
	c.mu.Lock()
	if c.spare == nil {
		c.spare = frames[:0]
	}
	c.mu.Unlock()
}

// writeLoop writes what is queued until the queue is empty, then exits; it
// sends the close frame when a close was requested. Only one runs at a
// time (push starts it). A failed write closes the connection, which ends
// the reader.
func (c *conn) writeLoop() {
	defer c.writers.Done()
	for {
		frames, code, text, flush, stop := c.take()
		if stop {
			return
		}
		if code != 0 && !flush {
			done(frames, errTooSlow)
			frames = frames[:0]
		}
		if err := c.writeAll(frames); err != nil {
			c.logger.Debug("write failed", "err", err)
			c.discard(errClosing)
			c.ws.Close()
			c.markStopped()
			return
		}
		c.giveBack(frames)
		if code != 0 {
			c.writeCloseFrame(code, text)
			c.markStopped()
			return
		}
	}
}

// closing reports whether a close was requested.
func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode != 0
}

func (c *conn) markStopped() {
	c.mu.Lock()
	c.writing = false
	c.closeSent = true
	c.mu.Unlock()
}

// writeAll writes frames under one write deadline.
func (c *conn) writeAll(frames []out) error {
	if len(frames) == 0 {
		return nil
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		done(frames, err)
		return err
	}
	delivered := 0
	for i, f := range frames {
		err := c.ws.WriteMessage(websocket.TextMessage, f.b)
		if f.ev != nil {
			if err != nil {
				f.ev.Done(fmt.Errorf("conn %s: %w", c.id, err))
			} else {
				f.ev.Done(nil)
				delivered++
				c.srv.metrics.latencyOf(f.ev)
			}
		}
		if err != nil {
			c.srv.metrics.writeErrors.Add(bg, 1)
			done(frames[i+1:], fmt.Errorf("conn %s: %w", c.id, err))
			c.srv.metrics.deliveries.Add(bg, int64(delivered))
			return err
		}
	}
	c.srv.metrics.deliveries.Add(bg, int64(delivered))
	return nil
}

// writeCloseFrame sends the close frame, then bounds the wait for the
// client's answer: the reader gets it, or a timeout, and ends.
func (c *conn) writeCloseFrame(code int, text string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(writeWait))
	_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now().Add(closeGrace))
}

// startTimers arms the ping timer and the token's expiry.
func (c *conn) startTimers(pingEvery time.Duration) {
	var ping func()
	ping = func() {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err == nil {
			c.pinger.Reset(pingEvery)
		}
	}
	c.pinger = time.AfterFunc(pingEvery, ping)
	if !c.claims.Expiry.IsZero() {
		c.expiry = time.AfterFunc(time.Until(c.claims.Expiry)+expirySlop, func() {
			c.kick(websocket.ClosePolicyViolation, "token expired", false)
		})
	}
}

func (c *conn) stopTimers() {
	c.pinger.Stop()
	if c.expiry != nil {
		c.expiry.Stop()
	}
}

// readLoop owns every read. It handles client ops until the connection
// fails or closes.
func (c *conn) readLoop(ctx context.Context, pingEvery time.Duration) error {
	c.ws.SetReadLimit(maxFrame)
	deadline := 2 * pingEvery // a peer silent for two periods is closed
	extend := func() error {
		if c.closing() {
			return nil // the close deadline stands
		}
		return c.ws.SetReadDeadline(time.Now().Add(deadline))
	}
	_ = extend()
	c.ws.SetPongHandler(func(string) error { return extend() })
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		if c.closing() {
			// Our close frame is out or on its way: what the client
			// sends until its close reply is moot, and must not push
			// the close deadline back.
			continue
		}
		_ = extend()
		if !c.limiter.Allow() {
			c.refused++
			if c.refused > abuseLimit {
				c.logger.WarnContext(ctx, "client frame flood, closing", "refused", c.refused)
				c.kick(websocket.ClosePolicyViolation, "too many frames", true)
				return errClosing
			}
			c.reply(errorFrame{Type: "error", Code: codeRateLimited, Message: "too many frames; slow down"})
			continue
		}
		c.refused = 0
		if typ != websocket.TextMessage {
			c.reply(errorFrame{Type: "error", Code: codeBadRequest, Message: "frames must be JSON text frames"})
			continue
		}
		c.handle(ctx, b)
	}
}

func (c *conn) reply(v any) { c.push(out{b: encode(v)}, true) }

func (c *conn) fail(ref string, err error) {
	var ef *errFrame
	if !errors.As(err, &ef) {
		ef = &errFrame{codeUnavailable, "try again later"}
	}
	c.reply(errorFrame{Type: "error", Code: ef.code, Message: ef.msg, Ref: ref})
}

// handle runs one client op.
func (c *conn) handle(ctx context.Context, b []byte) {
	f, err := parseClientFrame(b)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	switch f.Op {
	case "ping":
		c.reply(pongFrame{Type: "pong", Ref: f.Ref})
	case "unsubscribe":
		if !bridge.ValidChannel(f.Channel) {
			c.fail(f.Ref, &errFrame{codeBadRequest, "invalid channel name"})
			return
		}
		c.sub.Leave(f.Channel)
		c.reply(channelFrame{Type: "unsubscribed", Channel: f.Channel, Ref: f.Ref})
	case "subscribe":
		c.subscribe(ctx, f)
	case "refresh":
		c.refresh(ctx, f)
	}
}

// refresh replaces the connection's claims with those of a new token for
// the same user, so the session outlives the first token. Channels the new
// token no longer grants are left, each with an unsubscribed frame.
func (c *conn) refresh(ctx context.Context, f clientFrame) {
	claims, err := c.srv.verifier.RefreshContext(ctx, c.claims, f.Token)
	if err != nil {
		c.srv.metrics.authFailure("refresh")
		c.fail(f.Ref, &errFrame{codeBadToken, err.Error()})
		return
	}
	c.claims = claims
	for _, ch := range c.sub.ChannelNames() {
		if !claims.ChannelAllowed(ch) {
			c.sub.Leave(ch)
			c.reply(channelFrame{Type: "unsubscribed", Channel: ch})
		}
	}
	if c.expiry != nil {
		c.expiry.Reset(time.Until(claims.Expiry) + expirySlop)
	}
	c.reply(refreshedFrame{Type: "refreshed", Exp: claims.Expiry.UTC().Format(time.RFC3339), Ref: f.Ref})
}

func (c *conn) subscribe(ctx context.Context, f clientFrame) {
	if err := c.srv.checkChannel(c.claims, f.Channel); err != nil {
		c.fail(f.Ref, err)
		return
	}
	since, err := bridge.ParseCursor(f.Since)
	if err != nil {
		c.fail(f.Ref, &errFrame{codeBadRequest, "malformed since cursor"})
		return
	}
	if !c.sub.Subscribed(f.Channel) && c.sub.Channels() >= c.srv.opts.MaxChannels {
		c.fail(f.Ref, &errFrame{codeLimit, "too many channels on this connection"})
		return
	}
	ok := channelFrame{Type: "subscribed", Channel: f.Channel, Ref: f.Ref}
	if err := c.sub.Join(ctx, f.Channel, since, func() { c.reply(ok) }); err != nil {
		if !errors.Is(err, errClosing) && ctx.Err() == nil {
			c.logger.WarnContext(ctx, "replay failed", "channel", f.Channel, "err", err)
			c.fail(f.Ref, err)
		}
	}
}
