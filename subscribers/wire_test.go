package subscribers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/subscribers"
)

// Frames written by hookwire's own framing read back whole with gorilla at
// every length class of the header (7-bit, 16-bit and 64-bit lengths).
func TestFramesOfEveryLengthClass(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { framesOfEveryLengthClass(t, newEnv(t, subscribers.Options{})) })
	// Over TLS the socket cannot be written without waiting, so every
	// frame goes through the connection's writer goroutine.
	t.Run("tls", func(t *testing.T) {
		framesOfEveryLengthClass(t, newEnvWith(t, subscribers.Options{}, httptest.NewTLSServer))
	})
}

func framesOfEveryLengthClass(t *testing.T, e *env) {
	ws := e.mustDial("token=" + token("42"))
	// The frame's JSON around data is about 150 bytes: these sizes put
	// frames on both sides of 125 and 65,535.
	sizes := []int{0, 1, 100, 126, 65_300, 65_535, 65_536, 200_000}
	for i, n := range sizes {
		data := json.RawMessage(`"` + strings.Repeat("y", n) + `"`)
		e.publish(&bridge.Event{ID: fmt.Sprint(i), Type: "t", Users: []string{"42"}, Data: data})
	}
	for i, n := range sizes {
		f := read(t, ws)
		if f["id"] != fmt.Sprint(i) || len(f["data"].(string)) != n {
			t.Fatalf("frame %d: id %v, %d bytes of data; want %d", i, f["id"], len(f["data"].(string)), n)
		}
	}
}

// A client's ping is answered with a pong carrying its payload, and a
// client's close with a close of the same code.
func TestClientPingAndClose(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	ws := e.mustDial("token=" + token("42"))
	pong := make(chan string, 1)
	ws.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case s := <-pong:
		if s != "hello" {
			t.Fatalf("pong %q, want hello", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}

	ws2 := e.mustDial("token=" + token("42"))
	echo := make(chan int, 1)
	ws2.SetCloseHandler(func(code int, _ string) error { echo <- code; return nil })
	if err := ws2.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ws2.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws2.ReadMessage(); err != nil {
			break
		}
	}
	select {
	case code := <-echo:
		if code != 4001 {
			t.Fatalf("close echo %d, want 4001", code)
		}
	default:
		t.Fatal("no close echo")
	}
}

// An event's frame is built once per replica, header included: every
// connection gets the same bytes.
func TestEventWireBuiltOnce(t *testing.T) {
	ev := &bridge.Event{ID: "a", Type: "t", Users: []string{"42"}}
	calls := 0
	enc := func(b []byte) []byte { calls++; return append([]byte{0x81, byte(len(b))}, b...) }
	a, b := ev.Wire(enc), ev.Wire(enc)
	if calls != 1 || !bytes.Equal(a, b) || !bytes.Equal(a[2:], ev.Frame()) {
		t.Fatalf("Wire called enc %d times", calls)
	}
}

// BenchmarkBroadcastToSockets: the fan-out loop end to end in one process:
// Hub.Publish of one channel event to n WebSocket connections on loopback,
// each frame written by the fan-out itself, and n gorilla clients reading.
// deliveries/s counts frames received; the readers share the CPUs.
func BenchmarkBroadcastToSockets(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			e := newEnv(b, subscribers.Options{MaxConnsPerUser: n})
			tok := token("42", "news")
			var got atomic.Int64
			each := make([]atomic.Int64, n) // frames each connection received
			for i := range n {
				ws := e.mustDial("token=" + tok + "&channels=news")
				ws.SetReadDeadline(time.Time{}) // mustDial's stays behind
				go func() {
					for {
						if _, _, err := ws.NextReader(); err != nil {
							return
						}
						each[i].Add(1)
						got.Add(1)
					}
				}()
			}
			slowest := func() int64 {
				m := each[0].Load()
				for i := range each {
					m = min(m, each[i].Load())
				}
				return m
			}
			data := json.RawMessage(`{"balance":"12.50","currency":"EUR"}`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				// At most 64 events in flight to any connection,
				// well within its queue (256): a flood would measure
				// slow-consumer closes.
				for spin := time.Now(); slowest() < int64(i-64); {
					if time.Since(spin) > 10*time.Second {
						b.Fatalf("event %d: the slowest connection received %d", i, slowest())
					}
					runtime.Gosched()
				}
				e.hub.Publish(b.Context(), bridge.Batch{Events: []*bridge.Event{{ID: fmt.Sprint(i), Type: "balance.updated", Channel: "news", Data: data, Time: time.Now()}}})
			}
			want := int64(n) * int64(b.N)
			deadline := time.Now().Add(30 * time.Second)
			for got.Load() < want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			if got.Load() != want {
				b.Fatalf("%d of %d frames received", got.Load(), want)
			}
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// loopbackPair returns both ends of a loopback TCP connection with fixed,
// small buffers (no autotuning), so that a write of a few hundred KiB
// blocks until the client reads. The receive buffer stays well above a
// segment: a tiny one stalls the flow on TCP's zero-window probes.
func loopbackPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	server.(*net.TCPConn).SetWriteBuffer(16 << 10)
	client.(*net.TCPConn).SetReadBuffer(64 << 10)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// A client that keeps reading, however slowly, is not cut off in the
// middle of a long write: the write's budget is for making no progress
// (the close frame of a slow consumer's 1013 follows such a write, and a
// cut-off write would lose it). One that stops reading, or trickles past
// the write's limit, is.
func TestWriteBudgetIsForNoProgress(t *testing.T) {
	const stall = time.Second
	// 1 MiB, about 150 KiB of which the buffers hold: the rest goes out
	// only as the client reads it, 16 KiB every 50 ms, so about 2.7 s
	// (several stall budgets) with progress every 50 ms.
	bufs := func() [][]byte {
		var b [][]byte
		for range 64 {
			b = append(b, bytes.Repeat([]byte("x"), 16<<10))
		}
		return b
	}
	reader := func(c net.Conn) *atomic.Int64 {
		var n atomic.Int64
		go func() {
			buf := make([]byte, 16<<10)
			for {
				time.Sleep(50 * time.Millisecond)
				k, err := io.ReadFull(c, buf)
				n.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
		return &n
	}

	t.Run("slow reader gets it all", func(t *testing.T) {
		s, c := loopbackPair(t)
		got := reader(c)
		start := time.Now()
		if err := subscribers.WriteAllForTest(s, bufs(), stall, time.Minute); err != nil {
			t.Fatalf("write to a slow reader failed after %v: %v (%d bytes read)", time.Since(start), err, got.Load())
		}
		if took := time.Since(start); took < 3*stall/2 {
			t.Logf("the write took %v, less than the stall budget's 1.5x: the test proved less than it should", took)
		}
	})
	t.Run("stopped reader fails after the stall budget", func(t *testing.T) {
		s, _ := loopbackPair(t)
		start := time.Now()
		err := subscribers.WriteAllForTest(s, bufs(), 300*time.Millisecond, time.Minute)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a client that never reads: %v, want a deadline error", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("write to a client that never reads took %v, want 300-600ms", took)
		}
	})
	t.Run("trickling reader fails at the limit", func(t *testing.T) {
		s, c := loopbackPair(t)
		reader(c)
		start := time.Now()
		err := subscribers.WriteAllForTest(s, bufs(), stall, 3*stall/2)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a trickling client: %v, want a deadline error", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("write to a trickling client took %v, want about its 1.5s limit", took)
		}
	})
}
