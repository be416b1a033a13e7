package subscribers_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/memstream"
	"github.com/hookwire/hookwire/subscribers"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type env struct {
	t      testing.TB
	stream *memstream.Stream
	hub    *bridge.Hub
	srv    *subscribers.Server
	url    string
	tls    bool
}

func newEnv(t testing.TB, opts subscribers.Options) *env {
	t.Helper()
	return newEnvWith(t, opts, httptest.NewServer)
}

func newEnvWith(t testing.TB, opts subscribers.Options, start func(http.Handler) *httptest.Server) *env {
	t.Helper()
	return newEnvVerifier(t, opts, start, nil)
}

// verifier is what subscribers.New takes to check tokens.
type verifier interface {
	VerifyContext(ctx context.Context, token string) (auth.Claims, error)
	RefreshContext(ctx context.Context, current auth.Claims, token string) (auth.Claims, error)
}

// newEnvVerifier is newEnvWith with the token verifier wrapped by wrap
// (when not nil).
func newEnvVerifier(t testing.TB, opts subscribers.Options, start func(http.Handler) *httptest.Server, wrap func(verifier) verifier) *env {
	t.Helper()
	st := memstream.New(memstream.Options{})
	hub := bridge.NewHub(st, bridge.HubOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx, st); close(done) }()
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Head == nil {
		opts.Head = st.Head
	}
	var vv verifier = v
	if wrap != nil {
		vv = wrap(v)
	}
	srv := subscribers.New(hub, vv, opts)
	hs := start(srv)
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Drain(dctx)
		dcancel()
		srv.Close()
		hs.Close()
		cancel()
		<-done
	})
	return &env{t: t, stream: st, hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http"), tls: hs.TLS != nil}
}

func token(sub string, channels ...string) string {
	tok, err := auth.Sign(secret, auth.Claims{Subject: sub, Channels: channels, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		panic(err)
	}
	return tok
}

func (e *env) dial(query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.DefaultDialer
	if e.tls {
		d = &websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	ws, resp, err := d.Dial(e.url+"?"+query, hdr)
	if err == nil {
		e.t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func (e *env) mustDial(query string) *websocket.Conn {
	e.t.Helper()
	ws, resp, err := e.dial(query, nil)
	if err != nil {
		e.t.Fatalf("dial: %v (%v)", err, resp)
	}
	if f := read(e.t, ws); f["type"] != "welcome" {
		e.t.Fatalf("first frame %v, want welcome", f)
	}
	return ws
}

func read(t testing.TB, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %q: %v", b, err)
	}
	return f
}

func send(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (e *env) publish(evs ...*bridge.Event) []bridge.AppendResult {
	e.t.Helper()
	res, err := e.stream.Append(context.Background(), evs)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func TestRejectedBeforeUpgrade(t *testing.T) {
	e := newEnv(t, subscribers.Options{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"}})
	expired, _ := auth.Sign(secret, auth.Claims{Subject: "42", Expiry: time.Now().Add(-time.Hour)})
	tests := []struct {
		name   string
		query  string
		origin string
		want   int
	}{
		{"no token", "", "", 401},
		{"garbage token", "token=abc", "", 401},
		{"expired token", "token=" + expired, "", 401},
		{"disallowed origin", "token=" + token("42"), "https://evil.example.com", 403},
		{"wildcard apex not allowed", "token=" + token("42"), "https://example.org", 403},
		{"wildcard empty label", "token=" + token("42"), "https://.example.org", 403},
		{"wildcard query trick", "token=" + token("42"), "https://evil.com?.example.org", 403},
		{"wildcard fragment trick", "token=" + token("42"), "https://evil.com#.example.org", 403},
		{"wildcard userinfo trick", "token=" + token("42"), "https://u@evil.com:1@a.example.org", 403},
		{"channel not granted", "token=" + token("42", "prices.*") + "&channels=news", "", 403},
		{"invalid channel", "token=" + token("42", "*") + "&channels=a%20b", "", 400},
		{"bad cursor", "token=" + token("42") + "&since=nope", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			_, resp, err := e.dial(tt.query, hdr)
			if err == nil {
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("status %v, want %d", resp, tt.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	t.Run("allowed origins", func(t *testing.T) {
		for _, o := range []string{"https://app.example.com", "https://eu.example.org", "https://a-1.eu.EXAMPLE.org", ""} {
			hdr := http.Header{}
			if o != "" {
				hdr.Set("Origin", o)
			}
			if _, resp, err := e.dial("token="+token("42"), hdr); err != nil {
				t.Errorf("origin %q: %v %v", o, err, resp)
			}
		}
	})
	t.Run("plain GET", func(t *testing.T) {
		resp, err := http.Get(strings.Replace(e.url, "ws", "http", 1) + "?token=" + token("42"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("status %d, want 426", resp.StatusCode)
		}
	})
	t.Run("bearer header", func(t *testing.T) {
		if _, resp, err := e.dial("", http.Header{"Authorization": {"Bearer " + token("42")}}); err != nil {
			t.Errorf("dial: %v %v", err, resp)
		}
	})
}

func TestDeliveryToEveryTabOnlyOfThatUser(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	tab1 := e.mustDial("token=" + token("42"))
	tab2 := e.mustDial("token=" + token("42"))
	other := e.mustDial("token=" + token("43"))
	e.publish(&bridge.Event{ID: "evt_1", Type: "balance.updated", Users: []string{"42"}, Data: json.RawMessage(`{"balance":"10.00"}`)})
	for _, ws := range []*websocket.Conn{tab1, tab2} {
		f := read(t, ws)
		if f["type"] != "event" || f["id"] != "evt_1" || f["event"] != "balance.updated" || f["cursor"] == "" {
			t.Errorf("frame %v", f)
		}
		if _, ok := f["channel"]; ok {
			t.Errorf("user event has a channel: %v", f)
		}
	}
	other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, b, err := other.ReadMessage(); err == nil {
		t.Errorf("user 43 got %s", b)
	}
}

func TestOps(t *testing.T) {
	e := newEnv(t, subscribers.Options{MaxChannels: 2})
	ws := e.mustDial("token=" + token("42", "prices.*"))
	tests := []struct {
		name string
		in   string
		want map[string]any
	}{
		{"ping", `{"op":"ping","ref":"p1"}`, map[string]any{"type": "pong", "ref": "p1"}},
		{"subscribe", `{"op":"subscribe","channel":"prices.EURUSD","ref":"1"}`, map[string]any{"type": "subscribed", "channel": "prices.EURUSD", "ref": "1"}},
		{"forbidden", `{"op":"subscribe","channel":"news","ref":"2"}`, map[string]any{"type": "error", "code": "forbidden", "ref": "2"}},
		{"invalid channel", `{"op":"subscribe","channel":"a b","ref":"3"}`, map[string]any{"type": "error", "code": "bad_request", "ref": "3"}},
		{"malformed", `{"op":`, map[string]any{"type": "error", "code": "bad_request"}},
		{"unknown op", `{"op":"dance","ref":"4"}`, map[string]any{"type": "error", "code": "bad_request", "ref": "4"}},
		{"unknown field", `{"op":"ping","ref":"5","x":1}`, map[string]any{"type": "error", "code": "bad_request", "ref": "5"}},
		{"bad since", `{"op":"subscribe","channel":"prices.X","since":"zz","ref":"6"}`, map[string]any{"type": "error", "code": "bad_request", "ref": "6"}},
		{"second channel", `{"op":"subscribe","channel":"prices.B","ref":"7"}`, map[string]any{"type": "subscribed", "channel": "prices.B"}},
		{"too many channels", `{"op":"subscribe","channel":"prices.C","ref":"8"}`, map[string]any{"type": "error", "code": "limit_exceeded", "ref": "8"}},
		{"unsubscribe", `{"op":"unsubscribe","channel":"prices.B","ref":"9"}`, map[string]any{"type": "unsubscribed", "channel": "prices.B", "ref": "9"}},
		{"ref of 64 characters", `{"op":"ping","ref":"` + strings.Repeat("é", 64) + `"}`, map[string]any{"type": "pong", "ref": strings.Repeat("é", 64)}},
		{"ref of 65 characters", `{"op":"ping","ref":"` + strings.Repeat("x", 65) + `"}`, map[string]any{"type": "error", "code": "bad_request", "ref": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send(t, ws, tt.in)
			got := read(t, ws)
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("got %v, want %s=%v", got, k, v)
				}
			}
		})
	}
	// The connection stayed up and the subscription works.
	e.publish(&bridge.Event{ID: "p1", Type: "price", Channel: "prices.EURUSD", Data: json.RawMessage(`1.1`)})
	if f := read(t, ws); f["id"] != "p1" || f["channel"] != "prices.EURUSD" {
		t.Errorf("frame %v", f)
	}
}

func TestFrameTooLargeCloses1009(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	ws := e.mustDial("token=" + token("42"))
	send(t, ws, `{"op":"ping","ref":"`+strings.Repeat("x", 5000)+`"}`)
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("err %v, want close 1009", err)
	}
}

func TestResumeOverWebSocket(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	res := e.publish(
		&bridge.Event{ID: "a", Type: "t", Users: []string{"42"}},
		&bridge.Event{ID: "b", Type: "t", Users: []string{"43"}},
		&bridge.Event{ID: "c", Type: "t", Users: []string{"42"}},
	)
	ws := e.mustDial("token=" + token("42") + "&since=" + url.QueryEscape(res[0].Cursor.String()))
	if f := read(t, ws); f["id"] != "c" {
		t.Fatalf("replayed %v, want c", f)
	}
	e.publish(&bridge.Event{ID: "d", Type: "t", Users: []string{"42"}})
	if f := read(t, ws); f["id"] != "d" {
		t.Fatalf("live %v, want d", f)
	}
	old := bridge.Cursor{Epoch: "gone", MS: 1}
	ws2 := e.mustDial("token=" + token("42") + "&since=" + old.String())
	if f := read(t, ws2); f["type"] != "reset" || f["reason"] != "history_expired" {
		t.Fatalf("got %v, want reset", f)
	}
}

func TestWelcomeCursorResumesWithoutGap(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	e.publish(&bridge.Event{ID: "before", Type: "t", Users: []string{"42"}})
	ws, _, err := e.dial("token="+token("42"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := read(t, ws)
	cur, _ := w["cursor"].(string)
	if w["type"] != "welcome" || cur == "" {
		t.Fatalf("welcome %v has no cursor", w)
	}
	ws.Close()
	e.publish(&bridge.Event{ID: "while-away", Type: "t", Users: []string{"42"}})
	ws2 := e.mustDial("token=" + token("42") + "&since=" + cur)
	if f := read(t, ws2); f["id"] != "while-away" {
		t.Fatalf("got %v, want while-away", f)
	}
}

func TestSlowConsumerClosed1013(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e := newEnv(t, subscribers.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	slow := e.mustDial("token=" + token("42"))
	fast := e.mustDial("token=" + token("42"))
	big := json.RawMessage(`"` + strings.Repeat("x", 60000) + `"`)
	got := make(chan int, 1)
	halfway := make(chan struct{})
	go func() {
		n := 0
		for {
			fast.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := fast.ReadMessage(); err != nil {
				got <- n
				return
			}
			n++
			if n == 1000 {
				// The hub has fanned out 1,000 events of 60 kB: the
				// slow one's queue (256) and socket buffers overflowed.
				close(halfway)
			}
			if n == 2000 {
				got <- n
				return
			}
		}
	}()
	for i := range 2000 {
		e.publish(&bridge.Event{ID: fmt.Sprint(i), Type: "t", Users: []string{"42"}, Data: big})
	}
	// The slow one did not read while the events went out; it must have
	// been closed with 1013. It reads as soon as the server counted the
	// close (or from halfway on), not after the last event, so that a
	// loaded machine cannot turn the close into a timeout of the server's
	// blocked write (10 s from when its socket filled).
	for slowCloses(t, reader) == 0 {
		select {
		case <-halfway:
		case n := <-got:
			t.Fatalf("fast reader got %d of 2000", n)
		case <-time.After(5 * time.Millisecond):
			continue
		}
		break
	}
	t.Logf("slow reader starts after %d slow-consumer closes", slowCloses(t, reader))
	var err error
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	for err == nil {
		_, _, err = slow.ReadMessage()
	}
	if !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Errorf("slow consumer: %v, want close 1013", err)
	}
	if n := <-got; n != 2000 {
		t.Errorf("fast reader got %d of 2000", n)
	}
}

// slowCloses reads hookwire.slow_consumer_closes from reader.
func slowCloses(t *testing.T, reader *sdkmetric.ManualReader) int64 {
	t.Helper()
	return counter(t, reader, "hookwire.slow_consumer_closes")
}

// counter reads the int64 sum name from reader.
func counter(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				var n int64
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
				return n
			}
		}
	}
	return 0
}

func TestDrainCloses1001(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e := newEnv(t, subscribers.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	ws := e.mustDial("token=" + token("42"))
	e.publish(&bridge.Event{ID: "last", Type: "t", Users: []string{"42"}})
	// The hub hands it to the connection, which writes it: then drain.
	for deadline := time.Now().Add(10 * time.Second); counter(t, reader, "hookwire.deliveries") < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the event was not written within 10s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Drain(ctx) }()
	if f := read(t, ws); f["id"] != "last" {
		t.Fatalf("got %v, want the queued event before the close", f)
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("err %v, want 1001", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Drain: %v", err)
	}
	if _, resp, err := e.dial("token="+token("42"), nil); err == nil || resp.StatusCode != 503 {
		t.Errorf("upgrade while draining: %v %v", err, resp)
	}
	if !errors.Is(ctx.Err(), nil) {
		t.Error("drain used the whole budget")
	}
}

func FuzzClientFrame(f *testing.F) {
	for _, s := range []string{`{"op":"ping","ref":"1"}`, `{"op":"subscribe","channel":"a","since":"e-1-0"}`, `{"op":`, `[]`, `null`, `{"op":"unsubscribe","channel":"` + strings.Repeat("a", 200) + `"}`} {
		f.Add(s)
	}
	// The oracle: an accepted frame is one JSON object whose members are
	// all known strings, with a known op and a ref of at most 64
	// characters, and it is accepted again once re-encoded; a refused one
	// is refused with a code from the contract's list.
	known := map[string]bool{"op": true, "channel": true, "since": true, "ref": true, "token": true}
	codes := []string{"bad_request", "forbidden", "limit_exceeded", "unavailable", "rate_limited", "invalid_token"}
	f.Fuzz(func(t *testing.T, s string) {
		err := subscribers.ParseClientFrameForTest([]byte(s))
		if err != nil {
			code, _, _ := strings.Cut(err.Error(), ": ")
			if !slices.Contains(codes, code) {
				t.Fatalf("%q refused with %q: not an error frame code of the contract", s, err)
			}
			return
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(s))
		if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
			t.Fatalf("accepted %q, which is not one JSON object (%v)", s, err)
		}
		canon := map[string]string{}
		for k, v := range m {
			name := strings.ToLower(k) // encoding/json matches names case-insensitively
			str, ok := v.(string)
			if !known[name] || (!ok && v != nil) {
				t.Fatalf("accepted %q: member %q = %v", s, k, v)
			}
			canon[name] = str
		}
		switch canon["op"] {
		case "subscribe", "unsubscribe", "ping", "refresh":
		default:
			t.Fatalf("accepted %q: op %q", s, canon["op"])
		}
		if len([]rune(canon["ref"])) > 64 {
			t.Fatalf("accepted %q: ref of %d characters", s, len([]rune(canon["ref"])))
		}
		again, _ := json.Marshal(canon)
		if err := subscribers.ParseClientFrameForTest(again); err != nil {
			t.Fatalf("accepted %q but not its re-encoding %s: %v", s, again, err)
		}
	})
}

func tokenTTL(sub string, ttl time.Duration, channels ...string) string {
	tok, err := auth.Sign(secret, auth.Claims{Subject: sub, Channels: channels, Expiry: time.Now().Add(ttl)})
	if err != nil {
		panic(err)
	}
	return tok
}

func TestTokenExpiryAndRefresh(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	// Expires in 2s: without a refresh, closed with 1008.
	short := e.mustDial("token=" + tokenTTL("42", 2*time.Second))
	short.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, _, err := short.ReadMessage()
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("err %v, want 1008 at exp", err)
	}

	ws := e.mustDial("token=" + tokenTTL("42", 2*time.Second, "prices.*", "news"))
	send(t, ws, `{"op":"subscribe","channel":"news","ref":"s"}`)
	if f := read(t, ws); f["type"] != "subscribed" {
		t.Fatalf("got %v", f)
	}
	send(t, ws, `{"op":"refresh","token":"`+tokenTTL("43", time.Hour)+`","ref":"r0"}`)
	if f := read(t, ws); f["type"] != "error" || f["code"] != "invalid_token" || f["ref"] != "r0" {
		t.Fatalf("refresh for another user: %v", f)
	}
	send(t, ws, `{"op":"refresh","token":"`+tokenTTL("42", time.Hour, "prices.*")+`","ref":"r1"}`)
	// news is no longer granted: unsubscribed, then refreshed.
	if f := read(t, ws); f["type"] != "unsubscribed" || f["channel"] != "news" {
		t.Fatalf("got %v, want unsubscribed news", f)
	}
	if f := read(t, ws); f["type"] != "refreshed" || f["ref"] != "r1" || f["exp"] == "" {
		t.Fatalf("got %v, want refreshed", f)
	}
	// Past the first token's exp, the connection is still up.
	time.Sleep(3 * time.Second)
	send(t, ws, `{"op":"ping","ref":"p"}`)
	if f := read(t, ws); f["type"] != "pong" {
		t.Fatalf("after the first exp: %v", f)
	}
}

func TestConnectionsPerUser(t *testing.T) {
	e := newEnv(t, subscribers.Options{MaxConnsPerUser: 2})
	a := e.mustDial("token=" + token("42"))
	e.mustDial("token=" + token("42"))
	if _, resp, err := e.dial("token="+token("42"), nil); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v %v, want 429", err, resp)
	}
	e.mustDial("token=" + token("43")) // others are not affected
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := e.dial("token="+token("42"), nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's place was not freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClientFrameRateLimit(t *testing.T) {
	e := newEnv(t, subscribers.Options{FrameRate: 1, FrameBurst: 2})
	ws := e.mustDial("token=" + token("42"))
	for range 3 {
		send(t, ws, `{"op":"ping"}`)
	}
	read(t, ws)
	read(t, ws)
	if f := read(t, ws); f["type"] != "error" || f["code"] != "rate_limited" {
		t.Fatalf("got %v, want rate_limited", f)
	}
	// A flood is closed with 1008.
	go func() {
		for range 500 {
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)) != nil {
				return
			}
		}
	}()
	var err error
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for err == nil {
		_, _, err = ws.ReadMessage()
	}
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("flood: %v, want 1008", err)
	}
}

// TestTokenInQueryAndHeaderRefused: a token in both places is ambiguous:
// 400 problem+json, no upgrade, even when both are the same valid token.
func TestTokenInQueryAndHeaderRefused(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	tok := token("42")
	for _, other := range []string{tok, token("43")} {
		_, resp, err := e.dial("token="+tok, http.Header{"Authorization": {"Bearer " + other}})
		if err == nil {
			t.Fatal("upgraded with two tokens")
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("two tokens: %v, want 400 problem+json", resp)
		}
	}
}

// TestInvalidUTF8Closes1007: RFC 6455 §8.1, a text frame that is not
// UTF-8 fails the connection with 1007 (not an error frame).
func TestInvalidUTF8Closes1007(t *testing.T) {
	e := newEnv(t, subscribers.Options{})
	ws := e.mustDial("token=" + token("42"))
	send(t, ws, "{\"op\":\"ping\",\"ref\":\"\xff\xfe\"}")
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var err error
	for err == nil {
		var b []byte
		if _, b, err = ws.ReadMessage(); err == nil {
			t.Errorf("frame before the close: %s", b)
		}
	}
	if !websocket.IsCloseError(err, websocket.CloseInvalidFramePayloadData) {
		t.Fatalf("err %v, want close 1007", err)
	}
}
