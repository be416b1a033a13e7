package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hookwire/hookwire/bridge"
)

// FuzzDecodeEvent checks that the event decoder and validator never panic,
// refuse only with a *bridge.ValidationError, and accept only events that
// keep the contract and can be framed for WebSocket clients.
func FuzzDecodeEvent(f *testing.F) {
	for _, tt := range invalidEvents {
		f.Add([]byte(tt.body))
	}
	for _, tt := range validEvents {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodeEvent(body)
		if err == nil {
			err = ev.Validate()
		}
		if err != nil {
			var ve *bridge.ValidationError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error %v (%T), want a *bridge.ValidationError with a reason", err, err)
			}
			if p := invalidDetails(err); p.Status != http.StatusBadRequest || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		prepare(ev)
		if ev.ID == "" || ev.Type == "" || len(ev.Users) == 0 && ev.Channel == "" || len(ev.Users) > bridge.MaxUsers {
			t.Fatalf("accepted %+v", ev)
		}
		seen := map[string]bool{}
		for _, u := range ev.Users {
			if seen[u] {
				t.Fatalf("users %q: repeated %q", ev.Users, u)
			}
			seen[u] = true
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("prepared %+v: %v", ev, err)
		}
		if ev.Channel != "" && !bridge.ValidChannel(ev.Channel) {
			t.Fatalf("channel %q", ev.Channel)
		}
		// The frame every subscriber gets must be valid JSON (Frame panics
		// on data it cannot encode) and carry the data unchanged.
		var frame struct{ Data json.RawMessage }
		if err := json.Unmarshal(ev.Frame(), &frame); err != nil {
			t.Fatalf("frame %s: %v", ev.Frame(), err)
		}
		if len(ev.Data) > 0 && !jsonEqual(frame.Data, ev.Data) {
			t.Fatalf("frame data %s, event data %s", frame.Data, ev.Data)
		}
		// Decoding is deterministic and stable under re-encoding.
		again, err := decodeEvent(body)
		if err != nil || again.Type != ev.Type || again.Channel != ev.Channel {
			t.Fatalf("second decode: %+v, %v", again, err)
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	da, db := json.NewDecoder(strings.NewReader(string(a))), json.NewDecoder(strings.NewReader(string(b)))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func BenchmarkIngestSingle(b *testing.B) {
	e := withEdge(New(&fakeStream{noRecord: true}, fakeKeys{goodKey: publisher}, Options{}))
	body := ev(`"type":"balance.updated","users":["42","43"],"data":{"balance":"10.00","currency":"EUR","account":{"id":"acc_123","owner":"Zoë"}}`)
	r := req{body: body}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rec := serve(e, r)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// FuzzDecodeBatch: the batch decoder refuses only with a
// *bridge.ValidationError that becomes a 400 problem, and accepts only one
// JSON object {"events": [...]} of 1..MaxBatch objects, returning exactly
// those elements: re-encoding them decodes to the same.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"type":"t","users":["1"]}]}`,
		`{"events":[{"type":"t","users":["1"]},{"type":"u","channel":"a"}]}`,
		`{"events":[]}`, `{"events":[1]}`, `{"events":{}}`, `{"events":[{}],"events":[{}]}`,
		`{"events":[{}],"x":1}`, `{"events":[{}]} {}`, `[]`, `null`, ``, "{\"events\":[{\"a\":\"\xff\"}]}",
		`{"EVENTS":[{}]}`, ` {"events" : [ {} , {} ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := decodeBatch(body)
		if err != nil {
			var ve *bridge.ValidationError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error %v (%T), want a *bridge.ValidationError with a reason", err, err)
			}
			if p := invalidDetails(err); p.Status != http.StatusBadRequest || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatch {
			t.Fatalf("accepted %d events", len(evs))
		}
		var whole map[string]json.RawMessage
		if err := json.Unmarshal(body, &whole); err != nil || len(whole) != 1 || whole["events"] == nil {
			t.Fatalf("accepted %q: not one object with only \"events\" (%v)", body, err)
		}
		for i, ev := range evs {
			var obj map[string]any
			if err := json.Unmarshal(ev, &obj); err != nil || obj == nil {
				t.Fatalf("event %d %q is not a JSON object: %v", i, ev, err)
			}
		}
		again, _ := json.Marshal(map[string][]json.RawMessage{"events": evs})
		evs2, err := decodeBatch(again)
		if err != nil || len(evs2) != len(evs) {
			t.Fatalf("re-encoded %s: %d events, %v; want %d", again, len(evs2), err, len(evs))
		}
		for i := range evs {
			if !jsonEqual(evs[i], evs2[i]) {
				t.Fatalf("event %d: %s, re-decoded %s", i, evs[i], evs2[i])
			}
		}
	})
}
