package subscribers

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Opcodes of the server frames hookwire writes (RFC 6455 §5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// pingFrame is the server's ping: no payload.
var pingFrame = []byte{0x80 | opPing, 0}

// frame returns a server frame: FIN set, one fragment, unmasked payload
// (RFC 6455 §5.2). A server frame needs no per-connection state, so an
// event's frame is built once per replica and its bytes are written as
// they are to every connection it goes to.
func frame(opcode byte, payload []byte) []byte {
	n := len(payload)
	b := make([]byte, 0, 10+n)
	b = append(b, 0x80|opcode)
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

// textFrame is frame(opText, payload).
func textFrame(payload []byte) []byte { return frame(opText, payload) }

// wire is the socket of one connection, under gorilla/websocket. gorilla
// does the handshake and reads client frames through it; hookwire writes
// its own server frames to it. That is what lets the fan-out write an
// event's prepared bytes itself when the socket has room, with no
// goroutine hand-off, and lets a connection's writer put every queued
// frame into one writev.
//
// Every write holds mu, gorilla's included (it still writes the close
// frame of a protocol error itself), so frames never interleave; a frame
// the socket took only part of keeps mu held until its rest is written.
type wire struct {
	net.Conn
	mu  sync.Mutex
	raw rawWriter // nil: the socket cannot be written without waiting (TLS, a pipe)
	// br is gorilla's reader of client frames (set by hijacker.Hijack):
	// while it holds no bytes, the reader waits for the socket shallowly
	// (awaitFrame) instead of deep inside gorilla.
	br *bufio.Reader

	// Parking (park, wake): while its client sends nothing, the
	// connection keeps no reader goroutine; pl wakes one when the
	// socket is readable.
	pl     *poller // nil: the reader never parks
	pid    uint32  // the poller's id of this wire; 0 until the first park
	resume func()  // starts a reader goroutine for a woken wire
	parked atomic.Bool
	// hold keeps the next reader from parking: it must wait on the
	// socket, with its read deadline, until a frame comes or the
	// deadline passes. Set by a wake that is about a deadline.
	hold atomic.Bool
	// heard is set by every client frame (heardFrame) and cleared by
	// the ping timer (silentSince): a peer silent for a whole ping
	// period gets a waiting reader, whose read deadline then closes it.
	heard atomic.Bool
}

// readBufferSize is the size of the reader of client frames: the smallest
// that gorilla reuses (it takes a hijacked reader larger than 256 bytes).
// Client frames are small, 4 KiB at most, and are read through it in
// pieces; every idle connection keeps it.
const readBufferSize = 264

// awaitFrame returns once a client frame's bytes are there to read: at
// once when the reader holds some, else when the socket is readable,
// closed or past its read deadline (the read that follows reports why).
// Waiting here rather than in gorilla's read keeps the stack of an idle
// connection's reader at its 2 KiB minimum.
func (w *wire) awaitFrame() {
	if w.br != nil && w.br.Buffered() == 0 {
		w.raw.awaitReadable()
	}
}

func newWire(nc net.Conn) *wire { return &wire{Conn: nc, raw: rawOf(nc)} }

// park arms the poller for the client's next bytes and reports whether
// the calling reader may return, keeping no goroutine for the connection:
// a new reader starts (resume) when the socket is readable, at its end or
// failed, when the read deadline is moved (the close handshake), when the
// socket is closed, or when the peer went silent for a ping period
// (silentSince). It reports false, and the reader waits in awaitFrame, when
// there is no poller, gorilla holds unread bytes, or hold is set.
func (w *wire) park() bool {
	if w.pl == nil || w.br == nil || !w.raw.ok() || w.br.Buffered() > 0 || w.hold.Load() {
		return false
	}
	if w.pid == 0 && !w.pl.register(w) {
		return false
	}
	// Parked before armed: the event may come at once.
	w.parked.Store(true)
	if w.pl.arm(w) {
		return true
	}
	// The socket is closed: read on, and report why. Unless a wake
	// got there first, and a new reader runs.
	return !w.parked.CompareAndSwap(true, false)
}

// wake starts a reader for a parked wire (resume); with hold, that reader
// waits on the socket instead of parking again. A wire that is not parked
// has a reader already.
func (w *wire) wake(hold bool) {
	if hold {
		w.hold.Store(true)
	}
	if w.parked.CompareAndSwap(true, false) {
		w.resume()
	}
}

// heardFrame records a client frame: the peer is alive, and the reader
// may park again.
func (w *wire) heardFrame() {
	w.heard.Store(true)
	w.hold.Store(false)
}

// silentSince reports whether no client frame came since the last call.
func (w *wire) silentSince() bool { return !w.heard.Swap(false) }

// forget unregisters the wire from the poller; its reader ends the
// connection.
func (w *wire) forget() {
	if w.pl != nil {
		w.pl.forget(w)
	}
}

// Close closes the socket and wakes a parked reader, which then ends the
// connection.
func (w *wire) Close() error {
	err := w.Conn.Close()
	w.wake(true)
	return err
}

// SetReadDeadline moves the read deadline; a parked reader is woken to
// wait for it (the close handshake's grace).
func (w *wire) SetReadDeadline(t time.Time) error {
	err := w.Conn.SetReadDeadline(t)
	if w.parked.Load() {
		w.wake(true)
	}
	return err
}

// Write is gorilla's path to the socket.
func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Conn.Write(p)
}

// tryWrite writes as much of p as the socket takes now, without waiting;
// w.mu is held. n < len(p) with a nil error means the socket is full.
func (w *wire) tryWrite(p []byte) (n int, err error) {
	if !w.raw.ok() {
		return 0, nil
	}
	n, err = w.raw.tryWrite(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil // a blocking write's deadline is still set: let the writer do it
	}
	return n, err
}

// writeAll writes bufs, in one writev where the platform has it; w.mu is
// held. It fails when the socket takes nothing for stall, or when the
// whole write outlasts limit: a client that reads, however slowly, is not
// cut off in the middle of a long queue (which would lose the close frame
// that tells it why), and one that trickles cannot hold the writer for
// ever.
func (w *wire) writeAll(bufs net.Buffers, stall, limit time.Duration) error {
	// No deadline stays behind to refuse the next non-blocking write.
	defer w.Conn.SetWriteDeadline(time.Time{})
	end := time.Now().Add(limit)
	for {
		deadline := time.Now().Add(stall)
		if deadline.After(end) {
			deadline = end
		}
		if err := w.Conn.SetWriteDeadline(deadline); err != nil {
			return err
		}
		// WriteTo consumes bufs as the socket takes them.
		n, err := bufs.WriteTo(w.Conn)
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(end) {
			return err
		}
	}
}

// hijacker is the http.ResponseWriter gorilla upgrades: its Hijack hands
// gorilla the connection's wire instead of the bare socket.
type hijacker struct {
	http.ResponseWriter
	wire *wire
}

func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.wire = newWire(nc)
	if brw.Reader.Buffered() > 0 {
		// gorilla refuses a client that sent data before the handshake.
		return w.wire, brw, nil
	}
	w.wire.br = bufio.NewReaderSize(w.wire, readBufferSize)
	return w.wire, bufio.NewReadWriter(w.wire.br, brw.Writer), nil
}
