package subscribers_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/internal/drain"
	"github.com/hookwire/hookwire/subscribers"
)

// TestUpgradeRefusedFromTheInstantTheDrainBegins: the replica's drain
// state, begun by its main, refuses upgrades at once with 503
// problem+json, before Server.Drain runs; open connections stay until it
// does.
func TestUpgradeRefusedFromTheInstantTheDrainBegins(t *testing.T) {
	st := new(drain.State)
	e := newEnv(t, subscribers.Options{Drain: st})
	open := e.mustDial("token=" + token("42"))
	st.Begin()
	_, resp, err := e.dial("token="+token("42"), nil)
	if err == nil {
		t.Fatal("upgraded while draining")
	}
	if resp == nil || resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("upgrade while draining: %v, want 503 problem+json", resp)
	}
	send(t, open, `{"op":"ping","ref":"still"}`)
	if f := read(t, open); f["type"] != "pong" {
		t.Fatalf("open connection got %v, want pong", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Drain(ctx) }()
	open.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := open.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after Drain: %v, want 1001", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// beginsDrain is a verifier that begins the drain while it checks the
// token: the request is past the drain check and on its way to the
// upgrade.
type beginsDrain struct {
	verifier
	st *drain.State
}

func (b beginsDrain) VerifyContext(ctx context.Context, tok string) (auth.Claims, error) {
	b.st.Begin()
	return b.verifier.VerifyContext(ctx, tok)
}

// TestUpgradingWhenTheDrainBeginsClosed1001: a connection that was
// upgrading when the drain began is closed with 1001, even though no
// Server.Drain ever runs.
func TestUpgradingWhenTheDrainBeginsClosed1001(t *testing.T) {
	st := new(drain.State)
	e := newEnvVerifier(t, subscribers.Options{Drain: st}, httptest.NewServer, func(v verifier) verifier {
		return beginsDrain{v, st}
	})
	ws, resp, err := e.dial("token="+token("42"), nil)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("got %v, want close 1001", err)
			}
			return
		}
		t.Logf("frame before the close: %s", b)
	}
}
