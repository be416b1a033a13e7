package subscribers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"

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

// out is one queued frame: b holds its bytes as they go on the wire,
// header included. d.Event is set for event frames, whose fan-out is told
// (d.Done) when the frame was written or dropped. partial marks the rest
// of a frame the socket took part of: it goes out before anything else and
// is never dropped, or the client would read a broken stream.
type out struct {
	b       []byte
	d       bridge.Delivery
	partial bool
}

// conn is one WebSocket connection. It is the bridge.Sink of its
// subscription: the fan-out hands it frames with Send, which never blocks.
//
// An idle connection holds one goroutine, its reader. A frame for a
// connection with nothing queued is written at once by the goroutine that
// pushes it (the fan-out, usually) with a write that does not wait: on a
// client that keeps up, an event costs one write(2) per connection and no
// goroutine hand-off. Only when the socket is full does a writer goroutine
// start; it owns the wire, writes the rest of the frame and everything
// queued behind it (one writev a round), and exits when the queue is
// empty, so idle connections cost no writer stacks. Pings and the token's
// expiry are timers that push frames like anyone else.
type conn struct {
	ws     *websocket.Conn
	wire   *wire // the socket under ws; every server frame is written to it
	id     string
	claims auth.Claims // owned by the reader (refresh replaces it)
	user   string      // claims.Subject, readable from any goroutine
	srv    *Server

	mu           sync.Mutex // guards queue, spare, writing, closeCode, closeText, flush, closeSent, closeWritten
	queue        []out
	spare        []out // the writer's drained slice, reused to save allocations
	writing      bool  // a writer goroutine is running
	closeCode    int   // non-zero once the connection is being closed
	closeText    string
	flush        bool // write what is queued before the close frame
	closeSent    bool // the close frame was written (or the writer gave up)
	closeWritten bool // a close frame (ours or the echo of the client's) is claimed

	writers sync.WaitGroup // the writer goroutine, while one runs
	room    chan struct{}  // cap 1: the writer made room in the queue
	pinger  *time.Timer
	expiry  *time.Timer

	// Owned by the reader goroutine:
	limiter *rate.Limiter // client frames
	refused int           // frames refused by limiter since the last one let through

	sub *bridge.Subscription // set by the reader before it reads
}

// log returns the logger of the connection. It is built when a line is
// logged, not kept: a kept one costs every idle connection about 200
// bytes of pre-encoded attributes.
func (c *conn) log() *slog.Logger { return c.srv.logger.With("conn", c.id, "user", c.user) }

// push writes f now when nothing is queued and the socket has room, and
// queues it for the writer otherwise. force lets control frames (replies,
// reset) past the queue bound, so a client is always told why. It returns
// false when the queue is full or the connection is closing; the caller
// then still owns f.d.
func (c *conn) push(f out, force bool) bool {
	c.mu.Lock()
	if c.closeCode != 0 || (!force && len(c.queue) >= queueLen) {
		c.mu.Unlock()
		return false
	}
	if !c.writing && len(c.queue) == 0 && c.wire.mu.TryLock() {
		n, err := c.wire.tryWrite(f.b)
		if err == nil && n < len(f.b) {
			// The socket is full: a writer takes the wire over, still
			// locked, and writes the rest first.
			c.queue = append(c.queue, out{b: f.b[n:], d: f.d, partial: n > 0})
			c.startWriterLocked(true)
			c.mu.Unlock()
			return true
		}
		c.wire.mu.Unlock()
		c.mu.Unlock()
		if err != nil {
			c.writeFailed([]out{f}, err)
		} else {
			c.written(f)
		}
		return true
	}
	c.queue = append(c.queue, f)
	c.startWriterLocked(false)
	c.mu.Unlock()
	return true
}

// written accounts for a frame the socket took whole.
func (c *conn) written(f out) {
	if f.d.Event != nil {
		f.d.Done(nil)
		c.srv.metrics.delivered.Add(1)
		c.srv.metrics.latencyOf(f.d)
	}
}

// writeFailed ends frames with err and closes the connection, which ends
// the reader.
func (c *conn) writeFailed(frames []out, err error) {
	c.srv.metrics.writeErrors.Add(bg, 1)
	c.log().Debug("write failed", "err", err)
	done(frames, fmt.Errorf("conn %s: %w", c.id, err))
	c.discard(errClosing)
	c.ws.Close()
}

// startWriterLocked starts the writer goroutine unless one runs; ownsWire
// hands it c.wire.mu, held. c.mu is held.
func (c *conn) startWriterLocked(ownsWire bool) {
	if c.writing || c.closeSent {
		if ownsWire {
			c.wire.mu.Unlock()
		}
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop(ownsWire)
}

// unstarted splits off the frames of q that may be dropped: all but a
// partly written first one.
func unstarted(q []out) (keep, drop []out) {
	if len(q) > 0 && q[0].partial {
		return q[:1:1], q[1:]
	}
	return nil, q
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
		if f.d.Event != nil {
			f.d.Done(err)
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
			c.queue, dropped = unstarted(c.queue)
		}
		c.startWriterLocked(false)
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
func (c *conn) Send(d bridge.Delivery) {
	if !c.push(out{b: d.Event.Wire(textFrame), d: d}, false) {
		d.Done(errTooSlow)
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
		c.log().Warn("subscriber too slow, closing", "queue", queueLen)
		c.kick(websocket.CloseTryAgainLater, "too slow, resume with since", false)
	}
}

// SendWait implements bridge.Sink for replays: it waits for room.
func (c *conn) SendWait(ctx context.Context, d bridge.Delivery) error {
	timer := time.NewTimer(replayWait)
	defer timer.Stop()
	for {
		if c.push(out{b: d.Event.Wire(textFrame), d: d}, false) {
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
	c.push(out{b: textFrame(encode(resetFrame{Type: "reset", Reason: reason}))}, true)
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
// time (push starts it). With ownsWire it starts holding c.wire.mu, with a
// partly written frame first in the queue. A failed write closes the
// connection, which ends the reader.
func (c *conn) writeLoop(ownsWire bool) {
	defer c.writers.Done()
	release := func() {
		if ownsWire {
			c.wire.mu.Unlock()
			ownsWire = false
		}
	}
	defer release()
	for {
		frames, code, text, flush, stop := c.take()
		if stop {
			return
		}
		if code != 0 && !flush {
			var drop []out
			frames, drop = unstarted(frames)
			done(drop, errTooSlow)
		}
		if !ownsWire {
			c.wire.mu.Lock()
			ownsWire = true
		}
		err := c.writeAll(frames)
		release()
		if err != nil {
			c.markStopped()
			return
		}
		c.giveBack(frames)
		if code != 0 {
			if c.claimClose() {
				c.writeCloseFrame(code, text)
			}
			c.markStopped()
			return
		}
	}
}

// claimClose reports whether the caller is the one to write a close frame.
func (c *conn) claimClose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeWritten {
		return false
	}
	c.closeWritten = true
	return true
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

// writeAll writes frames in one writev, under one write deadline;
// c.wire.mu is held.
func (c *conn) writeAll(frames []out) error {
	if len(frames) == 0 {
		return nil
	}
	bufs := make(net.Buffers, len(frames))
	for i, f := range frames {
		bufs[i] = f.b
	}
	if err := c.wire.writeAll(bufs, time.Now().Add(writeWait)); err != nil {
		c.writeFailed(frames, err)
		return err
	}
	for _, f := range frames {
		c.written(f)
	}
	return nil
}

// writeCloseFrame sends the close frame, then bounds the wait for the
// client's answer: the reader gets it, or a timeout, and ends.
func (c *conn) writeCloseFrame(code int, text string) {
	b := frame(opClose, websocket.FormatCloseMessage(code, text))
	c.wire.mu.Lock()
	_ = c.wire.writeAll(net.Buffers{b}, time.Now().Add(writeWait))
	c.wire.mu.Unlock()
	_ = c.wire.SetReadDeadline(time.Now().Add(closeGrace))
}

// onClose answers a close frame of the client's with the same code, unless
// ours is out already; nothing is written after it.
func (c *conn) onClose(code int, _ string) error {
	var dropped []out
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode = websocket.CloseNormalClosure
	}
	c.flush = false
	c.queue, dropped = unstarted(c.queue)
	c.mu.Unlock()
	done(dropped, errClosing)
	if !c.claimClose() {
		return nil
	}
	var payload []byte
	if code != websocket.CloseNoStatusReceived {
		payload = websocket.FormatCloseMessage(code, "")
	}
	c.wire.mu.Lock()
	_ = c.wire.writeAll(net.Buffers{frame(opClose, payload)}, time.Now().Add(time.Second))
	c.wire.mu.Unlock()
	return nil
}

// startTimers arms the ping timer and the token's expiry.
func (c *conn) startTimers(pingEvery time.Duration) {
	var ping func()
	ping = func() {
		if c.push(out{b: pingFrame}, true) {
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
	c.ws.SetPingHandler(func(data string) error {
		c.push(out{b: frame(opPong, []byte(data))}, true)
		return nil
	})
	c.ws.SetCloseHandler(c.onClose)
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
				c.log().WarnContext(ctx, "client frame flood, closing", "refused", c.refused)
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
		if !utf8.Valid(b) {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection, with 1007.
			c.kick(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8", true)
			return errClosing
		}
		c.handle(ctx, b)
	}
}

func (c *conn) reply(v any) { c.push(out{b: textFrame(encode(v))}, true) }

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
			c.log().WarnContext(ctx, "replay failed", "channel", f.Channel, "err", err)
			c.fail(f.Ref, err)
		}
	}
}
