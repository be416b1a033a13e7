package cloudevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// checkError: every refusal is an *Error with a 400 or a 415.
func checkError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || (e.Status != 400 && e.Status != 415) || e.Reason == "" {
		t.Fatalf("error %#v is not a 400/415 *Error", err)
	}
}

// FuzzStructured: the oracle is encoding/json. An accepted body is one
// JSON object whose specversion, id, source and type are the strings
// decoded, whose hookwire extensions are the addressing, and whose data
// is the data member; an accepted event encodes (Encode) to a CloudEvent
// that decodes again to the same type, channel and data.
func FuzzStructured(f *testing.F) {
	for _, s := range []string{structured, `{"specversion":"1.0","id":"1","source":"s","type":"t"}`, `{"specversion":"1.0","id":"1","source":"s","type":"t","data":null,"x":null}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AA=="}`, `{}`, `[]`, `{"specversion":"1.0","id":"1","source":"s","type":"t","hookwireusers":" a ,b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeStructured(body)
		if err != nil {
			checkError(t, err)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if m["specversion"] != "1.0" || m["id"] != ev.ID || m["source"] != ev.Source || m["type"] != ev.Type {
			t.Fatalf("attributes %+v differ from %v", ev, m)
		}
		if ev.ID == "" || ev.Source == "" || ev.Type == "" {
			t.Fatal("empty required attribute")
		}
		if c, ok := m["hookwirechannel"].(string); ok && c != ev.Channel {
			t.Fatalf("channel %q, oracle %q", ev.Channel, c)
		}
		if u, ok := m["hookwireusers"].(string); ok && len(ev.Users) != strings.Count(u, ",")+1 {
			t.Fatalf("users %q, oracle %q", ev.Users, u)
		}
		if d, ok := m["data"]; ok {
			want, _ := json.Marshal(d)
			var got any
			if err := json.Unmarshal(ev.Data, &got); err != nil {
				t.Fatalf("data %s is not JSON", ev.Data)
			}
			gotb, _ := json.Marshal(got)
			if !bytes.Equal(want, gotb) {
				t.Fatalf("data %s, oracle %s", gotb, want)
			}
		} else if ev.Data != nil {
			t.Fatalf("data %s without a data member", ev.Data)
		}
		b := ev.Bridge()
		if b.Validate() != nil {
			return
		}
		back, err := DecodeStructured(Encode(b, ev.Source))
		if err != nil || back.Type != ev.Type || back.Channel != ev.Channel || back.Source != ev.Source {
			t.Fatalf("Encode round trip: %+v %v", back, err)
		}
	})
}

// FuzzBinary: ce-* headers from one fuzzed attribute and value, on top of
// a valid event. The oracle: the value, percent-decoded by net/url, is
// the attribute; the body is the data exactly when encoding/json takes
// it.
func FuzzBinary(f *testing.F) {
	for _, s := range [][3]string{{"hookwireusers", "a,b", "{}"}, {"time", "2026-01-01T00:00:00Z", "[1]"}, {"id", "%41", "1"}, {"x", "%", ""}, {"hookwirechannel", "c", "x"}, {"type", "", "{}"}} {
		f.Add(s[0], s[1], []byte(s[2]), "application/json")
	}
	f.Fuzz(func(t *testing.T, attr, value string, body []byte, ct string) {
		h := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Content-Type": {ct}}
		h[http.CanonicalHeaderKey("ce-"+attr)] = []string{value}
		ev, err := DecodeBinary(h, body)
		if err != nil {
			checkError(t, err)
			return
		}
		if !jsonContentType(ct) && (len(body) > 0 || ct != "") {
			t.Fatalf("accepted Content-Type %q", ct)
		}
		if len(bytes.TrimSpace(body)) > 0 && (!json.Valid(body) || !bytes.Equal(ev.Data, body)) {
			t.Fatalf("data %q from body %q", ev.Data, body)
		}
		dec, uerr := url.PathUnescape(value)
		if uerr != nil {
			t.Fatalf("accepted a value net/url refuses: %q", value)
		}
		switch strings.ToLower(attr) {
		case "id":
			if ev.ID != dec {
				t.Fatalf("id %q, oracle %q", ev.ID, dec)
			}
		case "source":
			if ev.Source != dec {
				t.Fatalf("source %q, oracle %q", ev.Source, dec)
			}
		case "hookwirechannel":
			if ev.Channel != dec {
				t.Fatalf("channel %q, oracle %q", ev.Channel, dec)
			}
		}
	})
}

// FuzzBatch: an accepted batch is a JSON array (encoding/json agrees) of
// 1..MaxBatch objects, returned in order.
func FuzzBatch(f *testing.F) {
	for _, s := range []string{`[` + structured + `]`, `[{},{}]`, `[]`, `[1]`, `{}`, `[{}] [{}]`, ` [ { } ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := DecodeBatch(body)
		if err != nil {
			checkError(t, err)
			return
		}
		var oracle []map[string]any
		if err := json.Unmarshal(body, &oracle); err != nil || len(oracle) != len(raws) || len(raws) == 0 || len(raws) > MaxBatch {
			t.Fatalf("accepted %d events; encoding/json: %d, %v", len(raws), len(oracle), err)
		}
		for i, r := range raws {
			if _, err := DecodeStructured(r); err != nil {
				checkError(t, err)
			}
			var m map[string]any
			if json.Unmarshal(r, &m) != nil || len(m) != len(oracle[i]) {
				t.Fatalf("event %d differs", i)
			}
		}
	})
}
