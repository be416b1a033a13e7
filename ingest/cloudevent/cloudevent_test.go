package cloudevent

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

const structured = `{
  "specversion": "1.0",
  "type": "com.example.balance.updated",
  "source": "https://billing.example.com/accounts",
  "id": "A234-1234-1234",
  "time": "2026-04-05T17:31:00Z",
  "subject": "acct/42",
  "datacontenttype": "application/json",
  "hookwireusers": "42, 43",
  "hookwirechannel": "accounts.42",
  "comexampleextension1": "value",
  "comexampleothervalue": 5,
  "flag": true,
  "data": {"balance": "10.00"}
}`

func TestStructured(t *testing.T) {
	ev, err := Decode(http.Header{"Content-Type": {"application/cloudevents+json; charset=utf-8"}}, []byte(structured))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{ID: "A234-1234-1234", Source: "https://billing.example.com/accounts", Type: "com.example.balance.updated",
		Subject: "acct/42", Time: time.Date(2026, 4, 5, 17, 31, 0, 0, time.UTC), Users: []string{"42", "43"}, Channel: "accounts.42"}
	if ev.ID != want.ID || ev.Source != want.Source || ev.Type != want.Type || ev.Subject != want.Subject || !ev.Time.Equal(want.Time) ||
		strings.Join(ev.Users, "|") != "42|43" || ev.Channel != want.Channel || string(ev.Data) != `{"balance": "10.00"}` {
		t.Fatalf("%+v", ev)
	}
	b := ev.Bridge()
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if b.ID != EventID(ev.Source, ev.ID) || !strings.HasPrefix(b.ID, "ce_") || !b.Occurred.Equal(want.Time) {
		t.Errorf("bridge event %+v", b)
	}
	if EventID("a", "1") == EventID("b", "1") || EventID("a", "1") != EventID("a", "1") || EventID("a\x00", "1") == EventID("a", "\x001") {
		t.Error("EventID does not key on (source, id)")
	}
}

func TestBinary(t *testing.T) {
	h := http.Header{
		"Ce-Specversion":     {"1.0"},
		"Ce-Id":              {"1"},
		"Ce-Source":          {"/sensors/tn-1234567/alerts"},
		"Ce-Type":            {"alert.raised"},
		"Ce-Time":            {"2026-04-05T17:31:00.5%2B02:00"},
		"Ce-Hookwirechannel": {"alerts"},
		"Ce-Hookwireusers":   {"J%C3%BCrgen,7"},
		"Content-Type":       {"application/json"},
	}
	if DetectMode(h) != Binary {
		t.Fatal("not binary")
	}
	ev, err := Decode(h, []byte(`[1,2]`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Channel != "alerts" || ev.Users[0] != "Jürgen" || string(ev.Data) != "[1,2]" || ev.Time.Unix() != time.Date(2026, 4, 5, 15, 31, 0, 0, time.UTC).Unix() {
		t.Fatalf("%+v", ev)
	}
	// No data.
	h.Del("Content-Type")
	if ev, err := Decode(h, nil); err != nil || ev.Data != nil {
		t.Fatalf("no data: %+v %v", ev, err)
	}
}

func TestBatch(t *testing.T) {
	body := `[` + structured + `,{"specversion":"1.0","id":"2","source":"s","type":"t","hookwirechannel":"c"}, {"specversion":"0.3","id":"3","source":"s","type":"t"}]`
	h := http.Header{"Content-Type": {MediaBatch}}
	if DetectMode(h) != Batch || CheckBatch(h) != nil {
		t.Fatal("not a batch")
	}
	raws, err := DecodeBatch([]byte(body))
	if err != nil || len(raws) != 3 {
		t.Fatal(len(raws), err)
	}
	if _, err := DecodeStructured(raws[1]); err != nil {
		t.Error(err)
	}
	if _, err := DecodeStructured(raws[2]); !isStatus(err, 400, "specversion") {
		t.Errorf("0.3: %v", err)
	}
	for _, bad := range []string{``, `{}`, `[]`, `[1]`, `[{}] x`, `[{`, `null`, "[" + strings.Repeat(`{},`, MaxBatch) + "{}]"} {
		if _, err := DecodeBatch([]byte(bad)); !isStatus(err, 400, "") {
			t.Errorf("%.20q: %v", bad, err)
		}
	}
	if err := CheckBatch(http.Header{"Content-Type": {"application/json"}}); !isStatus(err, 415, "") {
		t.Errorf("batch content type: %v", err)
	}
}

func isStatus(err error, status int, attr string) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status && e.Attribute == attr
}

func TestErrors(t *testing.T) {
	base := map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "hookwireusers": "42"}
	with := func(k string, v any) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		body   string
		status int
		attr   string
	}{
		{with("specversion", nil), 400, "specversion"},
		{with("specversion", "0.3"), 400, "specversion"},
		{with("specversion", 1.0), 400, "specversion"},
		{with("id", nil), 400, "id"},
		{with("id", ""), 400, "id"},
		{with("id", 5), 400, "id"},
		{with("id", strings.Repeat("x", MaxIDLen+1)), 400, "id"},
		{with("source", nil), 400, "source"},
		{with("source", "a b"), 400, "source"},
		{with("source", "%zz"), 400, "source"},
		{with("type", nil), 400, "type"},
		{with("time", "yesterday"), 400, "time"},
		{with("dataschema", "relative"), 400, "dataschema"},
		{with("hookwireusers", "42,,43"), 400, "hookwireusers"},
		{with("hookwireusers", []string{"42"}), 400, "hookwireusers"},
		{with("hookwirechannel", ""), 400, "hookwirechannel"},
		{with("Bad-Name", "x"), 400, "Bad-Name"},
		{with("ext", map[string]any{}), 400, "ext"},
		{with("ext", 1.5), 400, "ext"},
		{with("data_base64", "AAAA"), 400, "data_base64"},
		{with("datacontenttype", "text/plain"), 400, "datacontenttype"},
		{`{"specversion":"1.0","specversion":"1.0","id":"1","source":"s","type":"t"}`, 400, "specversion"},
		{`{"specversion":"1.0"`, 400, ""},
		{`[]`, 400, ""},
		{"{\"specversion\":\"1.0\",\"id\":\"\xff\"}", 400, ""},
	} {
		_, err := DecodeStructured([]byte(tc.body))
		if !isStatus(err, tc.status, tc.attr) {
			t.Errorf("%s: %v, want %d %s", tc.body, err, tc.status, tc.attr)
		}
	}
	// A CloudEvent without addressing decodes; Validate refuses it.
	ev, err := DecodeStructured([]byte(with("hookwireusers", nil)))
	if err != nil {
		t.Fatal(err)
	}
	var ve *bridge.ValidationError
	if err := ev.Bridge().Validate(); !errors.As(err, &ve) || ve.Field != "users" {
		t.Errorf("no addressing: %v", err)
	}

	bin := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}, "Content-Type": {"application/json"}}
	for _, tc := range []struct {
		mod    func(h http.Header)
		body   string
		status int
		attr   string
	}{
		{func(h http.Header) { h.Set("Content-Type", "text/plain") }, `"x"`, 415, ""},
		{func(h http.Header) { h.Del("Content-Type") }, `{}`, 415, ""},
		{func(h http.Header) { h.Set("Content-Encoding", "gzip") }, `{}`, 415, ""},
		{func(h http.Header) {}, `{"a":`, 400, "data"},
		{func(h http.Header) {}, "\xff", 400, "data"},
		{func(h http.Header) { h.Del("Ce-Type") }, `{}`, 400, "type"},
		{func(h http.Header) { h.Set("Ce-Specversion", "0.3") }, `{}`, 400, "specversion"},
		{func(h http.Header) { h.Add("Ce-Id", "2") }, `{}`, 400, "id"},
		{func(h http.Header) { h.Set("Ce-Time", "%zz") }, `{}`, 400, "time"},
		{func(h http.Header) { h.Set("Ce-Datacontenttype", "application/json") }, `{}`, 400, "datacontenttype"},
		{func(h http.Header) { h.Set("Ce-Foo_bar", "1") }, `{}`, 400, "foo_bar"},
	} {
		h := bin.Clone()
		tc.mod(h)
		_, err := Decode(h, []byte(tc.body))
		if !isStatus(err, tc.status, tc.attr) {
			t.Errorf("%v %s: %v, want %d %s", h, tc.body, err, tc.status, tc.attr)
		}
	}
	if _, err := Decode(http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); !isStatus(err, 415, "") {
		t.Errorf("not a CloudEvent: %v", err)
	}
}

func TestEncode(t *testing.T) {
	ev := &bridge.Event{ID: "ce_1", Type: "balance.updated", Users: []string{"42", "43"}, Channel: "accounts.42",
		Data: json.RawMessage(`{"balance":"10.00"}`), Time: time.Date(2026, 4, 5, 17, 31, 0, 0, time.UTC)}
	out := Encode(ev, "")
	want := `{"specversion":"1.0","id":"ce_1","source":"hookwire","type":"balance.updated","time":"2026-04-05T17:31:00Z","datacontenttype":"application/json","hookwirechannel":"accounts.42","data":{"balance":"10.00"}}`
	if string(out) != want {
		t.Fatalf("%s\nwant %s", out, want)
	}
	// It is a CloudEvent this package decodes.
	back, err := DecodeStructured(out)
	if err != nil || back.Type != ev.Type || back.Channel != ev.Channel || string(back.Data) != string(ev.Data) || back.Users != nil {
		t.Fatalf("%+v %v", back, err)
	}
}
