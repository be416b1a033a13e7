package subscribers_test

import (
	"testing"
	"time"

	"github.com/hookwire/hookwire/subscribers"
)

// TestUpgradeWaitsUntilTheReplicaTails: a replica that does not read its
// stream yet lets no subscriber in (one welcomed then could miss the
// events appended before the stream's first read). An upgrade waits for
// it, and one that waits too long gets 503 problem+json.
func TestUpgradeWaitsUntilTheReplicaTails(t *testing.T) {
	tailing := make(chan struct{})
	e := newEnv(t, subscribers.Options{Tailing: tailing})

	// Tailing begins while the upgrade waits: the upgrade goes through,
	// not before.
	begun := time.Now()
	time.AfterFunc(300*time.Millisecond, func() { close(tailing) })
	ws := e.mustDial("token=" + token("42"))
	if waited := time.Since(begun); waited < 250*time.Millisecond {
		t.Errorf("upgraded after %v, before the replica read its stream (300ms)", waited)
	}
	send(t, ws, `{"op":"ping","ref":"p"}`)
	if f := read(t, ws); f["type"] != "pong" {
		t.Fatalf("got %v, want pong", f)
	}
}

// TestUpgradeRefusedWhenTheReplicaNeverTails: past the wait, 503.
func TestUpgradeRefusedWhenTheReplicaNeverTails(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 5 s")
	}
	e := newEnv(t, subscribers.Options{Tailing: make(chan struct{})})
	begun := time.Now()
	_, resp, err := e.dial("token="+token("42"), nil)
	if err == nil {
		t.Fatal("upgraded although the replica does not read its stream")
	}
	if resp == nil || resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upgrade to a replica not reading its stream: %v, want 503 problem+json with Retry-After", resp)
	}
	if waited := time.Since(begun); waited < 4*time.Second {
		t.Errorf("refused after %v, want after the 5 s wait", waited)
	}
}
