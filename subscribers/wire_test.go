package subscribers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
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
