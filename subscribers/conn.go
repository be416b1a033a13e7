package subscribers

import (
	"context"
	"fmt"
	"log/slog"
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
	writeStall = 10 * time.Second       // a write the socket takes nothing of for this long fails
	writeLimit = 60 * time.Second       // and no write of queued frames takes longer
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

// conn is one WebSocket connection. It is the bridge.Sink of its
// subscription: the fan-out hands it events with Send, which never blocks.
//
// An idle connection holds no goroutine: its reader (readFrame, run by
// Server.run) parks it and returns, and the poller starts a new one when
// the client sends (wire.park; where there is no epoll, the reader waits
// in awaitFrame instead). Every server frame goes through the
// connection's writer (writer.go), which writes inline when the socket has room and runs a
// goroutine of its own only while the socket is full. Pings and the
// token's expiry are timers that push frames like anyone else. Client
// operations are in ops.go.
type conn struct {
	ws     *websocket.Conn
	wr     *writer // every server frame is written through it
	wire   *wire   // the socket; the reader waits on it for client frames
	id     string
	claims auth.Claims // owned by the reader (refresh replaces it)
	user   string      // claims.Subject, readable from any goroutine
	srv    *Server

	timers timers // the ping and the token's expiry

	// Owned by the reader goroutine:
	readWait time.Duration // the read deadline after each client frame
	limiter  *rate.Limiter // client frames; nil until the first
	refused  int32         // frames refused by limiter since the last one let through

	// cloudEvents, set before the connection starts and then read-only:
	// format=cloudevents, event frames carry a structured CloudEvent as
	// data (cloudevents.go). Beside refused, it takes no room of its own.
	cloudEvents bool

	sub *bridge.Subscription // set by the reader before it reads
}

// log returns the logger of the connection. It is built when a line is
// logged, not kept: a kept one costs every idle connection about 200
// bytes of pre-encoded attributes.
func (c *conn) log() *slog.Logger { return c.srv.logger.With("conn", c.id, "user", c.user) }

// written implements writeObserver.
func (c *conn) written(f out) {
	if f.d.Event != nil {
		f.d.Done(nil)
		c.srv.metrics.delivered.Add(1)
		c.srv.metrics.latencyOf(f.d)
	}
}

// writeFailed implements writeObserver.
func (c *conn) writeFailed(err error) error {
	c.srv.metrics.writeErrors.Add(bg, 1)
	c.log().Debug("write failed", "err", err)
	return fmt.Errorf("conn %s: %w", c.id, err)
}

// close asks the writer to close the connection with code.
func (c *conn) close(code int, text string, mode closeMode) {
	c.wr.closeWith(closeRequest{code: code, text: text, mode: mode})
}

// Send implements bridge.Sink. It never blocks: a connection whose queue is
// full is closed with 1013, and its client resumes with its last cursor.
func (c *conn) Send(d bridge.Delivery) {
	if !c.wr.push(out{b: c.eventWire(d.Event), d: d}, eventFrame) {
		d.Done(errTooSlow)
		c.Overflow()
	}
}

// Overflow implements bridge.Sink.
func (c *conn) Overflow() {
	if !c.wr.closing() {
		c.srv.metrics.slowCloses.Add(bg, 1)
		c.log().Warn("subscriber too slow, closing", "queue", queueLen)
		c.close(websocket.CloseTryAgainLater, "too slow, resume with since", dropQueued)
	}
}

// SendWait implements bridge.Sink for replays: it waits for room.
func (c *conn) SendWait(ctx context.Context, d bridge.Delivery) error {
	timer := time.NewTimer(replayWait)
	defer timer.Stop()
	for {
		if c.wr.push(out{b: c.eventWire(d.Event), d: d}, eventFrame) {
			return nil
		}
		if c.wr.closing() {
			return errClosing
		}
		select {
		case <-c.wr.roomMade():
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
	c.wr.push(out{b: textFrame(encode(resetFrame{Type: "reset", Reason: reason}))}, controlFrame)
}

// onClose is gorilla's close handler: the writer answers the client's
// close frame.
func (c *conn) onClose(code int, _ string) error {
	c.wr.answerClose(code)
	return nil
}

// timers are a connection's ping and expiry timers. Their callbacks run
// on goroutines of the runtime's: stop waits for a running one, so that
// none outlives the connection.
type timers struct {
	mu      sync.Mutex // guards stopped, and orders running.Add before Wait
	stopped bool
	running sync.WaitGroup // callbacks under way
	ping    *time.Timer
	expiry  *time.Timer // nil for a token without exp
}

// enter reports whether a timer's callback may run; leave must follow.
func (t *timers) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.running.Add(1)
	return true
}

func (t *timers) leave() { t.running.Done() }

// stop disarms the timers and waits for a callback under way.
func (t *timers) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.running.Wait()
	// No callback runs, and none can re-arm a timer any more.
	t.ping.Stop()
	if t.expiry != nil {
		t.expiry.Stop()
	}
}

// startTimers arms the ping timer and the token's expiry.
func (c *conn) startTimers(pingEvery time.Duration) {
	c.timers.ping = time.AfterFunc(pingEvery, func() {
		if !c.timers.enter() {
			return
		}
		defer c.timers.leave()
		if c.wire.silentSince() || c.wr.closing() {
			// No pong to the last ping: a parked connection gets a
			// reader that waits out the read deadline (two periods
			// after the last frame) and ends it if nothing comes.
			c.wire.wake(true)
		}
		if c.wr.push(out{b: pingFrame}, controlFrame) {
			c.timers.ping.Reset(pingEvery)
		}
	})
	if !c.claims.Expiry.IsZero() {
		c.timers.expiry = time.AfterFunc(time.Until(c.claims.Expiry)+expirySlop, func() {
			if !c.timers.enter() {
				return
			}
			defer c.timers.leave()
			c.close(websocket.ClosePolicyViolation, "token expired", dropQueued)
		})
	}
}

// prepareRead sets up the reads of readFrame: the frame limit, the read
// deadline and gorilla's control-frame handlers.
func (c *conn) prepareRead(pingEvery time.Duration) {
	c.ws.SetReadLimit(maxFrame)
	c.readWait = 2 * pingEvery // a peer silent for two periods is closed
	_ = c.extend()
	c.ws.SetPongHandler(func(string) error { return c.extend() })
	c.ws.SetPingHandler(func(data string) error {
		c.wr.push(out{b: frame(opPong, []byte(data))}, controlFrame)
		return nil
	})
	c.ws.SetCloseHandler(c.onClose)
}

// extend pushes the read deadline back, unless the connection is closing.
func (c *conn) extend() error {
	if c.wr.closing() {
		return nil // the close deadline stands
	}
	c.wire.heardFrame()
	return c.ws.SetReadDeadline(time.Now().Add(c.readWait))
}

// readControl reads a ping or pong that is next in the client's frames
// itself, and reports whether it did. gorilla would handle one inside
// ReadMessage and then wait, deep in its read, for the next message, which
// an idle client may not send for hours: the connection could not park.
// Anything else, and any frame gorilla would refuse (not masked, not
// final, reserved bits, a payload over 125 bytes), is left to gorilla,
// unread, as is every frame once the connection is closing.
func (c *conn) readControl() (bool, error) {
	br := c.wire.br
	if br == nil || c.wr.closing() || c.srv.gorillaControl {
		return false, nil
	}
	h, err := br.Peek(2)
	if err != nil {
		return false, nil // gorilla reads on and reports it
	}
	op := h[0] & 0x0f
	if h[0]&0xf0 != 0x80 || (op != opPing && op != opPong) || h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		return false, nil
	}
	n := 2 + 4 + int(h[1]&0x7f) // header, mask key, payload
	b, err := br.Peek(n)
	if err != nil {
		return false, nil
	}
	if op == opPong {
		_, _ = br.Discard(n)
		return true, c.extend()
	}
	// As gorilla's ping handler would (prepareRead): answer with the
	// unmasked payload, and leave the read deadline as it is.
	payload := make([]byte, n-6)
	for i := range payload {
		payload[i] = b[6+i] ^ b[2+i%4]
	}
	_, _ = br.Discard(n)
	c.wr.push(out{b: frame(opPong, payload)}, controlFrame)
	return true, nil
}

// readFrame reads one client frame and handles it. An error ends the
// connection. prepareRead ran before the first call. The reader calls it
// each time awaitFrame returns, so its deep stack exists only while a
// frame is being read.
func (c *conn) readFrame(ctx context.Context) error {
	typ, b, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	if c.wr.closing() {
		// Our close frame is out or on its way: what the client sends
		// until its close reply is moot, and must not push the close
		// deadline back.
		return nil
	}
	_ = c.extend()
	if c.limiter == nil {
		// Made on the first frame, with a full bucket as at the
		// upgrade: most connections never send one.
		c.limiter = rate.NewLimiter(rate.Limit(c.srv.opts.FrameRate), c.srv.opts.FrameBurst)
	}
	if !c.limiter.Allow() {
		c.refused++
		if c.refused > abuseLimit {
			c.log().WarnContext(ctx, "client frame flood, closing", "refused", c.refused)
			c.close(websocket.ClosePolicyViolation, "too many frames", flushQueued)
			return errClosing
		}
		c.reply(errorFrame{Type: "error", Code: codeRateLimited, Message: "too many frames; slow down"})
		return nil
	}
	c.refused = 0
	if typ != websocket.TextMessage {
		c.reply(errorFrame{Type: "error", Code: codeBadRequest, Message: "frames must be JSON text frames"})
		return nil
	}
	if !utf8.Valid(b) {
		// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
		// connection, with 1007.
		c.close(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8", flushQueued)
		return errClosing
	}
	c.handle(ctx, b)
	return nil
}
