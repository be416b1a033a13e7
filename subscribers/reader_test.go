package subscribers_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/subscribers"
)

// maskedText is a client text frame (RFC 6455 §5.3: client frames are
// masked) of a payload under 126 bytes.
func maskedText(payload string) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := []byte{0x81, 0x80 | byte(len(payload))}
	b = append(b, key[:]...)
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// The reader waits for a client frame outside gorilla while gorilla's
// buffer is empty (awaitFrame): frames that arrive together in one
// segment, and a frame that arrives in pieces, are each read whole.
func TestClientFramesTogetherAndInPieces(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	ws := e.mustDial("token=" + token("42"))
	raw := ws.UnderlyingConn()

	// Two frames in one write: the second is in gorilla's buffer when
	// the first is handled, and must not wait for more bytes.
	two := append(maskedText(`{"op":"ping","ref":"a"}`), maskedText(`{"op":"ping","ref":"b"}`)...)
	if _, err := raw.Write(two); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"a", "b"} {
		if f := read(t, ws); f["type"] != "pong" || f["ref"] != ref {
			t.Fatalf("got %v, want the pong of %q", f, ref)
		}
	}

	// One frame in three writes, apart: the header alone wakes the
	// reader, which then reads the rest as it comes.
	f := maskedText(`{"op":"ping","ref":"c"}`)
	for _, part := range [][]byte{f[:1], f[1:9], f[9:]} {
		if _, err := raw.Write(part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if f := read(t, ws); f["type"] != "pong" || f["ref"] != "c" {
		t.Fatalf("got %v, want the pong of c", f)
	}
}

// An idle connection holds no goroutine on Linux: its reader parks it and
// returns (wire.park), and a new one starts when the client sends. That
// holds across the server's pings that the client answers (the pongs are
// read without gorilla, which would wait deep in its read for the next
// message), and a parked connection still reads every op. Elsewhere its
// reader waits in awaitFrame, a few frames deep, not inside gorilla.
func TestIdleConnectionHoldsNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		idleReaderWaitsShallow(t)
		return
	}
	const n, every = 20, 50 * time.Millisecond
	e := newEnv(t, subscribers.Options{PingInterval: every})
	var pings atomic.Int64
	conns := make([]*websocket.Conn, n)
	frames := make([]chan map[string]any, n)
	for i := range conns {
		ws := e.mustDial("token=" + token(fmt.Sprint(i)))
		conns[i], frames[i] = ws, make(chan map[string]any, 16)
		ws.SetPingHandler(func(data string) error {
			pings.Add(1)
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func(ch chan map[string]any) {
			defer close(ch)
			for {
				_, b, err := ws.ReadMessage() // answers pings meanwhile
				if err != nil {
					return
				}
				var f map[string]any
				if json.Unmarshal(b, &f) == nil && f["type"] != "welcome" {
					ch <- f
				}
			}
		}(frames[i])
	}
	// Ten ping periods: a pong that did not reach the reader would have
	// closed every connection by its read deadline (two periods).
	time.Sleep(10 * every)
	if got := pings.Load(); got < n*5 {
		t.Fatalf("the clients answered %d pings, want at least %d", got, n*5)
	}
	if got := e.srv.Count(); got != n {
		t.Fatalf("%d connections open after ten ping periods, want %d", got, n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		readers := countStacks("subscribers.(*Server).run(")
		if readers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d idle connections keep a reader goroutine", readers, n)
		}
		time.Sleep(time.Millisecond)
	}
	// Each parked connection reads its client's next op.
	for i, ws := range conns {
		ref := fmt.Sprint("r", i)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","ref":"`+ref+`"}`)); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-frames[i]:
			if f["type"] != "pong" || f["ref"] != ref {
				t.Fatalf("connection %d: got %v, want the pong of %s", i, f, ref)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d: no answer to an op sent while parked", i)
		}
	}
}

// countStacks counts the goroutines whose stack has a frame containing fn.
func countStacks(fn string) int { return len(stacksWith(fn)) }

// stacksWith returns the stacks of the goroutines with a frame containing fn.
func stacksWith(fn string) []string {
	buf := make([]byte, 8<<20)
	var with []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, fn) {
			with = append(with, g)
		}
	}
	return with
}

func idleReaderWaitsShallow(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("the shallow wait needs a raw socket")
	}
	e := newEnv(t, subscribers.Options{})
	ws := e.mustDial("token=" + token("42"))
	send(t, ws, `{"op":"ping","ref":"x"}`) // the reader has read a frame once
	if f := read(t, ws); f["type"] != "pong" {
		t.Fatalf("got %v, want pong", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var reader string
		if readers := stacksWith("subscribers.(*Server).run("); len(readers) > 0 {
			reader = readers[len(readers)-1]
		}
		if strings.Contains(reader, "awaitReadable") && !strings.Contains(reader, "websocket.(*Conn)") {
			if frames := strings.Count(reader, "\n\t"); frames > 12 {
				t.Fatalf("the idle reader waits %d frames deep:\n%s", frames, reader)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no idle reader waiting in awaitFrame; reader:\n%s", reader)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A replay longer than the connection's queue waits for room (SendWait)
// while the client is slow to read, and loses nothing: the writer's room
// channel, made on the first wait, is signalled for room made before it.
func TestLongReplayToSlowReader(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	first := e.publish(&bridge.Event{ID: "first", Type: "t", Users: []string{"42"}})
	const n = 1500
	data := json.RawMessage(`"` + strings.Repeat("x", 4000) + `"`)
	evs := make([]*bridge.Event, n)
	for i := range evs {
		evs[i] = &bridge.Event{ID: fmt.Sprintf("e%d", i), Type: "t", Users: []string{"42"}, Data: data}
	}
	e.publish(evs...)
	ws, _, err := e.dial("token="+token("42")+"&since="+url.QueryEscape(first[0].Cursor.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := read(t, ws); f["type"] != "welcome" {
		t.Fatalf("first frame %v, want welcome", f)
	}
	time.Sleep(300 * time.Millisecond) // the socket and the queue fill up
	for i := 0; i < n; i++ {
		if f := read(t, ws); f["id"] != fmt.Sprintf("e%d", i) {
			t.Fatalf("frame %d: %v", i, f["id"])
		}
	}
}

// FuzzClientControlFrames: whatever bytes a client sends, a server that
// reads pings and pongs itself (readControl) answers exactly as one that
// leaves them to gorilla: the same frames, pongs and close codes, counted
// on the wire, until the connection ends.
func FuzzClientControlFrames(f *testing.F) {
	mask := func(op byte, payload string) []byte {
		b := maskedText(payload)
		b[0] = 0x80 | op
		return b
	}
	for _, b := range [][]byte{
		mask(0xA, ""), mask(0x9, "hello"), mask(0xA, "x"), append(mask(0x9, "a"), mask(0x9, "b")...),
		{0x89, 0x05, 'h', 'e', 'l', 'l', 'o'}, // not masked
		{0x09, 0x80, 1, 2, 3, 4},              // not final
		{0xC9, 0x80, 1, 2, 3, 4},              // a reserved bit
		{0x89, 0xFE, 0, 200},                  // a 126-byte ping
		{0x89}, {0x89, 0x85, 1, 2},            // cut short
		mask(0x8, "\x03\xe8"), // a close
		mask(0x1, `{"op":"ping","ref":"q"}`),
		append(mask(0x9, strings.Repeat("p", 125)), mask(0xA, "")...),
	} {
		f.Add(b)
	}
	ours := newEnv(f, subscribers.Options{})
	theirs := newEnv(f, subscribers.Options{})
	subscribers.LeaveControlFramesToGorillaForTest(theirs.srv)
	next := maskedText(`{"op":"ping","ref":"next"}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, g := wireOutcome(t, ours, b, next), wireOutcome(t, theirs, b, next)
		if a != g {
			t.Fatalf("client bytes %q:\n reading control frames itself: %s\n gorilla reading them: %s", b, a, g)
		}
	})
}

// wireOutcome sends b then next on a new connection, raw, then ends its
// side of the stream, and describes every frame the server sent back until
// the connection ended. The end of the client's bytes makes every run end,
// so the outcome does not depend on how long the server takes.
func wireOutcome(t *testing.T, e *env, b, next []byte) string {
	ws, resp, err := websocket.DefaultDialer.Dial(e.url+"?token="+token("42"), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer ws.Close()
	var got []string
	ws.SetPongHandler(func(s string) error { got = append(got, fmt.Sprintf("pong %q", s)); return nil })
	ws.SetPingHandler(func(s string) error { got = append(got, fmt.Sprintf("ping %q", s)); return nil })
	ws.SetCloseHandler(func(code int, text string) error {
		got = append(got, fmt.Sprintf("close %d %q", code, text))
		return nil
	})
	// The handlers above run inside ReadMessage.
	if f := read(t, ws); f["type"] != "welcome" {
		t.Fatalf("got %v, want the welcome", f)
	}
	raw := ws.UnderlyingConn().(*net.TCPConn)
	// Either may fail once the server has closed on a protocol error:
	// what it sent before that is still read below.
	_, _ = raw.Write(append(append([]byte(nil), b...), next...))
	_ = raw.CloseWrite()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("client bytes %q: the server neither ended the connection nor answered in 10 s (got %v)", b, got)
			}
			break
		}
		got = append(got, fmt.Sprintf("%d %s", typ, msg))
	}
	// The server ends its side too: no connection is left behind, parked
	// or not.
	for deadline := time.Now().Add(10 * time.Second); e.srv.Count() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("client bytes %q: the server still holds %d connections 10 s after the client's end", b, e.srv.Count())
		}
	}
	return strings.Join(append(got, "ended"), "; ")
}
