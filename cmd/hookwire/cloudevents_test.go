package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ceEnv is the environment of the CloudEvents tests' replica, run in the
// test process (serveInProcess): they only talk HTTP and WebSocket to it.
func ceEnv() []string {
	return []string{"HOOKWIRE_API_KEYS=" + testAPIKey, "HOOKWIRE_JWT_SECRET=" + testSecret}
}

// postCE posts body to path with h, a publisher key added.
func (r *replica) postCE(t *testing.T, path string, h http.Header, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.base+path, strings.NewReader(body))
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%d, body not JSON: %q", resp.StatusCode, b)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%d with Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, m
}

var (
	ceStructured = http.Header{"Content-Type": {"application/cloudevents+json"}}
	ceBatch      = http.Header{"Content-Type": {"application/cloudevents-batch+json"}}
)

// TestCloudEventsIn: structured, binary and batch CloudEvents are
// delivered with their source; (source, id) is the idempotency key.
func TestCloudEventsIn(t *testing.T) {
	r := serveWarm(t, ceEnv())
	sub := r.connect(t, "token="+subToken(t, "42", "alerts")+"&channels=alerts")

	ev := `{"specversion":"1.0","id":"A-1","source":"https://billing.example.com","type":"balance.updated","hookwireusers":"42","time":"2026-04-05T17:31:00Z","data":{"balance":"10.00"}}`
	code, m := r.postCE(t, "/v1/events", ceStructured, ev)
	if code != http.StatusAccepted || m["id"] == nil {
		t.Fatalf("structured: %d %v", code, m)
	}
	first := m["id"]
	f := sub.next(t)
	if f["event"] != "balance.updated" || f["source"] != "https://billing.example.com" || f["id"] != first || fmt_(f["data"]) != `{"balance":"10.00"}` ||
		f["time"] != "2026-04-05T17:31:00Z" {
		t.Fatalf("frame %v", f)
	}
	// A repeat of (source, id) is a duplicate; the same id from another
	// source is another event.
	if code, m := r.postCE(t, "/v1/events", ceStructured, ev); code != http.StatusOK || m["duplicate"] != true || m["id"] != first {
		t.Errorf("repeat: %d %v", code, m)
	}
	other := strings.Replace(ev, "https://billing.example.com", "/other", 1)
	code, m = r.postCE(t, "/v1/events", ceStructured, other)
	if code != http.StatusAccepted || m["id"] == first {
		t.Errorf("same id, other source: %d %v", code, m)
	}
	if f := sub.next(t); f["source"] != "/other" {
		t.Errorf("frame %v", f)
	}

	bin := http.Header{
		"Ce-Specversion": {"1.0"}, "Ce-Id": {"B-1"}, "Ce-Source": {"/sensors/tn-1"}, "Ce-Type": {"alert.raised"},
		"Ce-Hookwirechannel": {"alerts"}, "Content-Type": {"application/json"},
	}
	if code, m := r.postCE(t, "/v1/events", bin, `{"level":"high"}`); code != http.StatusAccepted {
		t.Fatalf("binary: %d %v", code, m)
	}
	if f := sub.next(t); f["event"] != "alert.raised" || f["channel"] != "alerts" || f["source"] != "/sensors/tn-1" {
		t.Errorf("binary frame %v", f)
	}

	batch := `[{"specversion":"1.0","id":"C-1","source":"/b","type":"t.one","hookwireusers":"42"},
	           {"specversion":"0.3","id":"C-2","source":"/b","type":"t.two","hookwireusers":"42"},
	           {"specversion":"1.0","id":"C-3","source":"/b","type":"t.three","hookwirechannel":"alerts","data":[1]}]`
	code, m = r.postCE(t, "/v1/events/batch", ceBatch, batch)
	res, _ := m["results"].([]any)
	if code != http.StatusOK || len(res) != 3 {
		t.Fatalf("batch: %d %v", code, m)
	}
	for i, want := range []float64{202, 400, 202} {
		if got := res[i].(map[string]any)["status"]; got != want {
			t.Errorf("batch result %d: %v, want %v", i, res[i], want)
		}
	}
	for _, want := range []string{"t.one", "t.three"} {
		if f := sub.next(t); f["event"] != want || f["source"] != "/b" {
			t.Errorf("batch frame %v, want %s", f, want)
		}
	}
	sub.quiet(t, 300*time.Millisecond)
}

// TestCloudEventsErrors: every refusal of §7, as problem+json.
func TestCloudEventsErrors(t *testing.T) {
	r := serveWarm(t, ceEnv())
	good := map[string]any{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "hookwireusers": "42"}
	with := func(k string, v any) string {
		m := map[string]any{}
		for k, v := range good {
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
		what   string
		h      http.Header
		body   string
		status int
		field  string
	}{
		{"no id", ceStructured, with("id", nil), 400, "id"},
		{"no source", ceStructured, with("source", nil), 400, "source"},
		{"no type", ceStructured, with("type", nil), 400, "type"},
		{"no specversion", ceStructured, with("specversion", nil), 400, "specversion"},
		{"specversion 0.3", ceStructured, with("specversion", "0.3"), 400, "specversion"},
		{"text data", ceStructured, with("datacontenttype", "text/plain"), 400, "datacontenttype"},
		{"binary data", ceStructured, with("data_base64", "AAAA"), 400, "data_base64"},
		{"no addressing", ceStructured, with("hookwireusers", nil), 400, "hookwireusers"},
		{"bad channel", ceStructured, with("hookwirechannel", "a b"), 400, "hookwirechannel"},
		{"binary text/plain", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"/s"}, "Ce-Type": {"t"}, "Ce-Hookwireusers": {"42"}, "Content-Type": {"text/plain"}}, "hi", 415, ""},
		{"binary not JSON", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"/s"}, "Ce-Type": {"t"}, "Ce-Hookwireusers": {"42"}, "Content-Type": {"application/json"}}, "{", 400, "data"},
		{"binary no type", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"/s"}, "Ce-Hookwireusers": {"42"}, "Content-Type": {"application/json"}}, "{}", 400, "type"},
	} {
		code, m := r.postCE(t, "/v1/events", tc.h, tc.body)
		if code != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.what, code, m, tc.status)
			continue
		}
		if tc.field != "" {
			errs, _ := m["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field {
				t.Errorf("%s: errors %v, want field %s", tc.what, m["errors"], tc.field)
			}
		}
	}
	if code, m := r.postCE(t, "/v1/events/batch", ceBatch, `{"events":[]}`); code != 400 {
		t.Errorf("batch not an array: %d %v", code, m)
	}
	if code, m := r.postCE(t, "/v1/events/batch", ceStructured, "["+with("id", "x")+"]"); code != 415 {
		t.Errorf("structured content type on the batch route: %d %v", code, m)
	}
	// Credentials first: a CloudEvent without a key is a 401.
	req, _ := http.NewRequest(http.MethodPost, r.base+"/v1/events", strings.NewReader(with("id", "y")))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no key: %d", resp.StatusCode)
	}
}

// TestCloudEventsOut: a subscriber with format=cloudevents gets each
// event's data as a structured CloudEvent.
func TestCloudEventsOut(t *testing.T) {
	r := serveWarm(t, ceEnv())
	plain := r.connect(t, "token="+subToken(t, "42"))
	ce := r.connect(t, "token="+subToken(t, "42")+"&format=cloudevents")
	code, m := r.post(t, testAPIKey, `{"type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, m)
	}
	p := plain.next(t)
	if fmt_(p["data"]) != `{"balance":"10.00"}` {
		t.Errorf("plain frame %v", p)
	}
	f := ce.next(t)
	data, _ := f["data"].(map[string]any)
	if f["type"] != "event" || f["id"] != m["id"] || data["specversion"] != "1.0" || data["id"] != m["id"] ||
		data["type"] != "balance.updated" || data["source"] != "hookwire" || fmt_(data["data"]) != `{"balance":"10.00"}` || data["time"] == nil {
		t.Fatalf("cloudevents frame %v", f)
	}
	if _, ok := data["hookwireusers"]; ok {
		t.Error("the CloudEvent names the users it was addressed to")
	}
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.base, "http")+"/v1/ws?token="+subToken(t, "42")+"&format=xml", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("format=xml: %v %v", err, resp)
	}
}

func fmt_(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
