package subscribers

import (
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/bridge"
)

// The write engine of one connection: its outgoing queue, the inline write,
// the writer goroutine and the close handshake. The connection (conn.go)
// uses it through push, closeWith, discard and answerClose only.
//
// Lock order, outermost first: bridge.Hub.mu → bridge.Subscription.mu →
// writer.mu → wire.mu. The fan-out calls push with the first two held;
// push takes writer.mu and, to write inline, only tries wire.mu
// (TryLock). No code takes writer.mu while it holds wire.mu.

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

// frameClass says whether a frame counts against the queue bound.
type frameClass uint8

const (
	// eventFrame is refused when queueLen frames are queued: the
	// connection is then too slow.
	eventFrame frameClass = iota
	// controlFrame (a reply, reset, ping or pong) is let past the bound,
	// so that a client is always told why.
	controlFrame
)

// closeMode says what a close does with the frames still queued.
type closeMode uint8

const (
	// flushQueued writes them before the close frame (a drain).
	flushQueued closeMode = iota
	// dropQueued drops them (a slow consumer, whose queue may be long),
	// all but a partly written first one.
	dropQueued
)

// wireHand says who holds wire.mu when the writer goroutine starts.
type wireHand uint8

const (
	// wireFree: nobody; the goroutine locks wire.mu before it writes.
	wireFree wireHand = iota
	// wireHandedOver: the starter holds wire.mu (an inline write found the
	// socket full) and hands it to the goroutine, which writes the rest of
	// that frame first.
	wireHandedOver
)

// closeRequest is a close frame the writer is asked to send.
type closeRequest struct {
	code int // non-zero once the connection is being closed
	text string
	mode closeMode
}

// batch is what the writer goroutine takes from the queue in one round.
type batch struct {
	frames []out
	close  closeRequest
}

// writeObserver is told what became of the frames the writer took.
type writeObserver interface {
	// written accounts for a frame the socket took whole.
	written(f out)
	// writeFailed accounts for a failed write and returns the error the
	// dropped frames' fan-outs are given.
	writeFailed(err error) error
}

// writer is the write engine. A frame pushed when nothing is queued is
// written at once by the goroutine that pushes it (the fan-out, usually),
// with a write that does not wait: on a client that keeps up, an event
// costs one write(2) and no goroutine hand-off. Only when the socket is
// full does a writer goroutine start; it owns the wire, writes the rest of
// the frame and everything queued behind it (one writev a round), and
// exits when the queue is empty, so idle connections cost no writer
// stacks. The goroutine is the writer's own: wait waits for it.
type writer struct {
	wire *wire
	obs  writeObserver

	mu           sync.Mutex // guards the fields below; see the lock order above
	queue        []out
	spare        []out // the goroutine's drained slice, reused to save allocations
	running      bool  // the writer goroutine runs
	close        closeRequest
	closeSent    bool // the close frame was written (or the writer gave up)
	closeWritten bool // a close frame (ours or the echo of the client's) is claimed

	goroutine sync.WaitGroup // the writer goroutine, while one runs
	// room (cap 1) is signalled when the writer made room in the queue;
	// nil until a replay first waits for room (roomMade): most
	// connections never do. Guarded by mu.
	room chan struct{}
}

func newWriter(w *wire, obs writeObserver) *writer {
	return &writer{wire: w, obs: obs}
}

// push writes f now when nothing is queued and the socket has room, and
// queues it for the writer goroutine otherwise. It returns false when an
// eventFrame finds the queue full, or when the connection is closing; the
// caller then still owns f.d.
func (w *writer) push(f out, class frameClass) bool {
	w.mu.Lock()
	if w.close.code != 0 || (class == eventFrame && len(w.queue) >= queueLen) {
		w.mu.Unlock()
		return false
	}
	if !w.running && len(w.queue) == 0 && w.wire.mu.TryLock() {
		n, err := w.wire.tryWrite(f.b)
		if err == nil && n < len(f.b) {
			// The socket is full: the goroutine takes the wire over,
			// still locked, and writes the rest first.
			w.queue = append(w.queue, out{b: f.b[n:], d: f.d, partial: n > 0})
			w.startLocked(wireHandedOver)
			w.mu.Unlock()
			return true
		}
		w.wire.mu.Unlock()
		w.mu.Unlock()
		if err != nil {
			w.fail([]out{f}, err)
		} else {
			w.obs.written(f)
		}
		return true
	}
	w.queue = append(w.queue, f)
	w.startLocked(wireFree)
	w.mu.Unlock()
	return true
}

// roomMade returns a channel signalled when the writer made room in the
// queue, or when the connection closes. The channel is made on the first
// call; room made before then was signalled to nobody, so it is signalled
// at once when the queue has room (or the connection is closing).
func (w *writer) roomMade() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.room == nil {
		w.room = make(chan struct{}, 1)
		if len(w.queue) < queueLen || w.close.code != 0 {
			signal(w.room)
		}
	}
	return w.room
}

// closing reports whether a close was requested.
func (w *writer) closing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.close.code != 0
}

// closeWith asks the writer to close the connection with req; the first
// request wins.
func (w *writer) closeWith(req closeRequest) {
	var dropped []out
	w.mu.Lock()
	if w.close.code == 0 {
		w.close = req
		if req.mode == dropQueued {
			w.queue, dropped = unstarted(w.queue)
		}
		w.startLocked(wireFree)
	}
	signal(w.room)
	w.mu.Unlock()
	done(dropped, errTooSlow)
}

// discard refuses further frames and drops the queued ones: the
// connection is gone.
func (w *writer) discard(err error) {
	w.mu.Lock()
	if w.close.code == 0 {
		w.close.code = websocket.CloseAbnormalClosure
	}
	w.closeSent = true
	dropped := w.queue
	w.queue = nil
	signal(w.room)
	w.mu.Unlock()
	done(dropped, err)
}

// answerClose answers a close frame of the client's with the same code,
// unless ours is out already; nothing is written after it.
func (w *writer) answerClose(code int) {
	var dropped []out
	w.mu.Lock()
	if w.close.code == 0 {
		w.close.code = websocket.CloseNormalClosure
	}
	w.close.mode = dropQueued
	w.queue, dropped = unstarted(w.queue)
	w.mu.Unlock()
	done(dropped, errClosing)
	if !w.claimClose() {
		return
	}
	var payload []byte
	if code != websocket.CloseNoStatusReceived {
		payload = websocket.FormatCloseMessage(code, "")
	}
	w.wire.mu.Lock()
	_ = w.wire.writeAll(net.Buffers{frame(opClose, payload)}, time.Second, time.Second)
	w.wire.mu.Unlock()
}

// wait waits for the writer goroutine, if one runs.
func (w *writer) wait() { w.goroutine.Wait() }

// fail ends frames with err and closes the socket, which ends the
// connection's reader. Neither lock is held.
func (w *writer) fail(frames []out, err error) {
	done(frames, w.obs.writeFailed(err))
	w.discard(errClosing)
	_ = w.wire.Close()
}

// startLocked starts the writer goroutine unless one runs; with
// wireHandedOver it hands it wire.mu, held (or unlocks it when no
// goroutine starts). w.mu is held.
func (w *writer) startLocked(hand wireHand) {
	if w.running || w.closeSent {
		if hand == wireHandedOver {
			w.wire.mu.Unlock()
		}
		return
	}
	w.running = true
	w.goroutine.Add(1)
	go w.loop(hand)
}

// take hands the queued frames to the goroutine, with the close request if
// any. When there is nothing to do it marks the goroutine stopped, under
// the same lock, so that a later push starts a new one.
func (w *writer) take() (b batch, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 && (w.close.code == 0 || w.closeSent) {
		w.running = false
		return batch{}, false
	}
	b = batch{frames: w.queue, close: w.close}
	w.queue = w.spare[:0]
	w.spare = nil
	if len(b.frames) > 0 {
		signal(w.room)
	}
	return b, true
}

// giveBack returns the goroutine's slice for reuse, unless it grew large.
func (w *writer) giveBack(frames []out) {
	if cap(frames) > queueLen {
		return
	}
	clear(frames)
	w.mu.Lock()
	if w.spare == nil {
		w.spare = frames[:0]
	}
	w.mu.Unlock()
}

// loop is the writer goroutine: it writes what is queued until the queue
// is empty, then exits; it sends the close frame when a close was
// requested. Only one runs at a time (push starts it). With
// wireHandedOver it starts holding wire.mu, with a partly written frame
// first in the queue. A failed write closes the socket, which ends the
// reader.
func (w *writer) loop(hand wireHand) {
	defer w.goroutine.Done()
	ownsWire := hand == wireHandedOver
	release := func() {
		if ownsWire {
			w.wire.mu.Unlock()
			ownsWire = false
		}
	}
	defer release()
	for {
		b, ok := w.take()
		if !ok {
			return
		}
		frames := b.frames
		if b.close.code != 0 && b.close.mode == dropQueued {
			var drop []out
			frames, drop = unstarted(frames)
			done(drop, errTooSlow)
		}
		if !ownsWire {
			w.wire.mu.Lock()
			ownsWire = true
		}
		err := w.writeAll(frames)
		release()
		if err != nil {
			w.fail(frames, err)
			w.markStopped()
			return
		}
		for _, f := range frames {
			w.obs.written(f)
		}
		w.giveBack(frames)
		if b.close.code != 0 {
			if w.claimClose() {
				w.writeCloseFrame(b.close)
			}
			w.markStopped()
			return
		}
	}
}

// writeAll writes frames in one writev, within the write budget; wire.mu
// is held.
func (w *writer) writeAll(frames []out) error {
	if len(frames) == 0 {
		return nil
	}
	bufs := make(net.Buffers, len(frames))
	for i, f := range frames {
		bufs[i] = f.b
	}
	return w.wire.writeAll(bufs, writeStall, writeLimit)
}

// claimClose reports whether the caller is the one to write a close frame.
func (w *writer) claimClose() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeWritten {
		return false
	}
	w.closeWritten = true
	return true
}

func (w *writer) markStopped() {
	w.mu.Lock()
	w.running = false
	w.closeSent = true
	w.mu.Unlock()
}

// writeCloseFrame sends the close frame, then bounds the wait for the
// client's answer: the reader gets it, or a timeout, and ends.
func (w *writer) writeCloseFrame(req closeRequest) {
	b := frame(opClose, websocket.FormatCloseMessage(req.code, req.text))
	w.wire.mu.Lock()
	_ = w.wire.writeAll(net.Buffers{b}, writeStall, writeStall)
	w.wire.mu.Unlock()
	_ = w.wire.SetReadDeadline(time.Now().Add(closeGrace))
}

// unstarted splits off the frames of q that may be dropped: all but a
// partly written first one.
func unstarted(q []out) (keep, drop []out) {
	if len(q) > 0 && q[0].partial {
		return q[:1:1], q[1:]
	}
	return nil, q
}

func signal(ch chan struct{}) {
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
