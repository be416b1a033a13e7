package redisstream

import (
	"testing"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/redistest"
)

// A client may send an id that looks exactly like a server-made one; it
// must still be deduplicated. Only ids the server made itself skip the
// dedupe record.
func TestClientIDShapedLikeGeneratedIsDeduplicated(t *testing.T) {
	s := New(redistest.Start(t).Client(t), Options{})
	ctx := t.Context()
	id := bridge.NewID() // the shape of a generated id, but sent by a client
	first := &bridge.Event{ID: id, Type: "t", Users: []string{"u"}, Data: []byte(`1`)}
	again := &bridge.Event{ID: id, Type: "t", Users: []string{"u"}, Data: []byte(`1`)}
	if _, err := s.Append(ctx, []*bridge.Event{first}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, []*bridge.Event{again})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate {
		t.Fatalf("a client's id %s of the generated shape was appended twice", id)
	}

	gen := &bridge.Event{Type: "t", Users: []string{"u"}, Data: []byte(`1`)}
	if _, err := s.Append(ctx, []*bridge.Event{gen}); err != nil {
		t.Fatal(err)
	}
	if !gen.GeneratedID || gen.ID == "" {
		t.Fatalf("an event without id got %q, GeneratedID %v", gen.ID, gen.GeneratedID)
	}
}
