package subscribers_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

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

// An idle connection's reader waits in awaitFrame, a few frames deep, not
// inside gorilla's read: that is what keeps its stack at 2 KiB.
func TestIdleReaderWaitsShallow(t *testing.T) {
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
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var reader string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "subscribers.(*Server).run(") {
				reader = g
			}
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
