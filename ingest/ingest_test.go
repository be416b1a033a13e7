package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/problem"
)

// invalidEvents are bodies that must get a 400 naming field (none when
// field is ""). They seed FuzzDecodeEvent too.
var invalidEvents = []struct {
	name  string
	body  string
	field string
}{
	{"missing type", ev(`"users":["42"]`), "type"},
	{"empty type", ev(`"type":"","users":["42"]`), "type"},
	{"type too long", ev(`"type":"` + strings.Repeat("t", 129) + `","users":["42"]`), "type"},
	{"type with control character", ev(`"type":"a\u0007b","users":["42"]`), "type"},
	{"null type", ev(`"type":null,"users":["42"]`), "type"},
	{"type not a string", ev(`"type":5,"users":["42"]`), "type"},
	{"id too long", ev(`"id":"` + strings.Repeat("i", 129) + `","type":"t","users":["42"]`), "id"},
	{"empty id", ev(`"id":"","type":"t","users":["42"]`), "id"},
	{"id not a string", ev(`"id":1,"type":"t","users":["42"]`), "id"},
	{"channel too long", ev(`"type":"t","channel":"` + strings.Repeat("c", 129) + `"`), "channel"},
	{"channel with space", ev(`"type":"t","channel":"prices EURUSD"`), "channel"},
	{"channel with slash", ev(`"type":"t","channel":"prices/EURUSD"`), "channel"},
	{"channel not ASCII", ev(`"type":"t","channel":"prix.€"`), "channel"},
	{"empty channel", ev(`"type":"t","channel":""`), "channel"},
	{"channel not a string", ev(`"type":"t","channel":true`), "channel"},
	{"user too long", ev(`"type":"t","users":["` + strings.Repeat("u", 129) + `"]`), "users[0]"},
	{"user too many bytes", ev(`"type":"t","users":["ok","` + strings.Repeat("€", 43) + `"]`), "users[1]"},
	{"user with control character", ev(`"type":"t","users":["a\u0001b"]`), "users[0]"},
	{"user with newline", ev(`"type":"t","users":["a\nb"]`), "users[0]"},
	{"user with C1 control", ev(`"type":"t","users":["a\u0085b"]`), "users[0]"},
	{"user with DEL", ev(`"type":"t","users":["a\u007fb"]`), "users[0]"},
	{"empty user", ev(`"type":"t","users":[""]`), "users[0]"},
	{"user not a string", ev(`"type":"t","users":[42]`), "users[0]"},
	{"users not an array", ev(`"type":"t","users":"42"`), "users"},
	{"null users", ev(`"type":"t","users":null,"channel":"c"`), "users"},
	{"too many users", ev(`"type":"t","users":[` + users(1001) + `]`), "users"},
	{"neither users nor channel", ev(`"type":"t"`), "users"},
	{"empty users without channel", ev(`"type":"t","users":[]`), "users"},
	{"unknown field", ev(`"type":"t","channel":"c","user":"42"`), "user"},
	{"field in other case", ev(`"Type":"t","channel":"c"`), "Type"},
	{"duplicate field", ev(`"type":"t","type":"u","channel":"c"`), "type"},
	{"data not JSON", ev(`"type":"t","channel":"c","data":{bad}`), ""},
	{"data missing value", ev(`"type":"t","channel":"c","data":}`), ""},
	{"data undefined", ev(`"type":"t","channel":"c","data":undefined`), ""},
	{"trailing garbage", ev(`"type":"t","channel":"c"`) + "x", ""},
	{"two objects", ev(`"type":"t","channel":"c"`) + "{}", ""},
	{"trailing comma", `{"type":"t","channel":"c",}`, ""},
	{"truncated", `{"type":"t","channel":"c"`, ""},
	{"empty body", ``, ""},
	{"whitespace body", " \n\t", ""},
	{"array body", `[{"type":"t","channel":"c"}]`, ""},
	{"null body", `null`, ""},
	{"string body", `"hello"`, ""},
	{"not UTF-8", "{\"type\":\"t\",\"channel\":\"c\",\"data\":\"\xff\"}", ""},
	{"single quotes", `{'type':'t'}`, ""},
}

func users(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%q", fmt.Sprint(i))
	}
	return strings.Join(s, ",")
}

func TestPostEventInvalid(t *testing.T) {
	for _, tt := range invalidEvents {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStream{}
			e, _ := newTestEcho(t, s, Options{})
			rec := serve(e, req{body: tt.body})
			p := decodeProblem(t, rec, http.StatusBadRequest, problem.InvalidEvent)
			var fields []problem.FieldError
			if tt.field != "" {
				fields = []problem.FieldError{{Field: tt.field, Reason: p.Detail[len(tt.field)+2:]}}
				if !strings.HasPrefix(p.Detail, tt.field+": ") {
					t.Fatalf("detail = %q, want it to start with %q", p.Detail, tt.field+": ")
				}
			}
			if !reflect.DeepEqual(p.Errors, fields) {
				t.Errorf("errors = %+v, want %+v", p.Errors, fields)
			}
			if p.Detail == "" {
				t.Error("detail is empty")
			}
			if calls := s.appended(); len(calls) != 0 {
				t.Errorf("Append called %d times for an invalid event", len(calls))
			}
		})
	}
}

// appendedEvent is the part of a bridge.Event the handler fills.
type appendedEvent struct {
	ID      string
	Type    string
	Users   []string
	Channel string
	Data    json.RawMessage
}

// validEvents must be accepted; want is the event appended (ID "" means
// a generated one).
var validEvents = []struct {
	name string
	body string
	want appendedEvent
}{
	{"user event", ev(`"id":"evt_1","type":"balance.updated","users":["42"],"data":{"balance":"10.00"}`),
		appendedEvent{ID: "evt_1", Type: "balance.updated", Users: []string{"42"}, Data: json.RawMessage(`{"balance":"10.00"}`)}},
	{"channel event without data", ev(`"type":"price.tick","channel":"prices.EURUSD"`),
		appendedEvent{Type: "price.tick", Channel: "prices.EURUSD"}},
	{"both, duplicate users removed", ev(`"type":"t","users":["7","42","7","42","8"],"channel":"a:b-c_d.e"`),
		appendedEvent{Type: "t", Users: []string{"7", "42", "8"}, Channel: "a:b-c_d.e"}},
	{"empty users with channel", ev(`"type":"t","users":[],"channel":"c"`),
		appendedEvent{Type: "t", Users: []string{}, Channel: "c"}},
	{"null data", ev(`"type":"t","channel":"c","data":null`),
		appendedEvent{Type: "t", Channel: "c", Data: json.RawMessage(`null`)}},
	{"scalar data", ev(`"type":"t","channel":"c","data":  12.5e3 `),
		appendedEvent{Type: "t", Channel: "c", Data: json.RawMessage(`12.5e3`)}},
	{"limits", ev(`"id":"` + strings.Repeat("i", 128) + `","type":"` + strings.Repeat("€", 128) + `","users":["` + strings.Repeat("u", 128) + `"],"channel":"` + strings.Repeat("c", 128) + `"`),
		appendedEvent{ID: strings.Repeat("i", 128), Type: strings.Repeat("€", 128), Users: []string{strings.Repeat("u", 128)}, Channel: strings.Repeat("c", 128)}},
	{"unicode user", ev(`"type":"t","users":["zoë","\u00e9"]`),
		appendedEvent{Type: "t", Users: []string{"zoë", "é"}}},
	{"whitespace around", " \n" + ev(`"type":"t","channel":"c"`) + "\n ",
		appendedEvent{Type: "t", Channel: "c"}},
}

func TestPostEventAccepted(t *testing.T) {
	for _, tt := range validEvents {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStream{}
			e, _ := newTestEcho(t, s, Options{})
			rec := serve(e, req{body: tt.body})
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want 202; body %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			calls := s.appended()
			if len(calls) != 1 || len(calls[0]) != 1 {
				t.Fatalf("Append calls = %v, want one of one event", calls)
			}
			got := calls[0][0]
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"id": got.ID, "cursor": got.Cursor.String()}
			if !reflect.DeepEqual(body, want) {
				t.Errorf("body = %v, want %v", body, want)
			}
			if tt.want.ID == "" {
				if !strings.HasPrefix(got.ID, "evt_") {
					t.Errorf("generated id = %q, want evt_…", got.ID)
				}
				tt.want.ID = got.ID
			}
			gotEv := appendedEvent{ID: got.ID, Type: got.Type, Users: got.Users, Channel: got.Channel, Data: got.Data}
			if !reflect.DeepEqual(gotEv, tt.want) {
				t.Errorf("appended %+v, want %+v", gotEv, tt.want)
			}
		})
	}
}

func TestPostEventDuplicate(t *testing.T) {
	s := &fakeStream{}
	e, _ := newTestEcho(t, s, Options{})
	body := ev(`"id":"evt_dup","type":"t","users":["42"]`)
	first := serve(e, req{body: body})
	if first.Code != http.StatusAccepted {
		t.Fatalf("first: status = %d, want 202; body %s", first.Code, first.Body)
	}
	second := serve(e, req{body: body})
	if second.Code != http.StatusOK {
		t.Fatalf("second: status = %d, want 200; body %s", second.Code, second.Body)
	}
	var a, b map[string]any
	_ = json.Unmarshal(first.Body.Bytes(), &a)
	_ = json.Unmarshal(second.Body.Bytes(), &b)
	want := map[string]any{"id": "evt_dup", "cursor": a["cursor"], "duplicate": true}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("duplicate body = %v, want %v", b, want)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name      string
		auth      string
		status    int
		challenge string
	}{
		{"missing", "", 401, `Bearer realm="hookwire"`},
		{"wrong key", "Bearer k_bad", 401, `Bearer realm="hookwire", error="invalid_token"`},
		{"key with suffix", "Bearer " + goodKey + "x", 401, `Bearer realm="hookwire", error="invalid_token"`},
		{"basic scheme", "Basic " + goodKey, 401, `Bearer realm="hookwire", error="invalid_request"`},
		{"no scheme", goodKey, 401, `Bearer realm="hookwire", error="invalid_request"`},
		{"scheme only", "Bearer", 401, `Bearer realm="hookwire", error="invalid_request"`},
		{"scheme and space", "Bearer ", 401, `Bearer realm="hookwire", error="invalid_request"`},
		{"good", "Bearer " + goodKey, 202, ""},
		{"scheme in lower case", "bearer " + goodKey, 202, ""},
	}
	for _, path := range []string{"/v1/events", "/v1/events/batch"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				s := &fakeStream{}
				e, logs := newTestEcho(t, s, Options{})
				body := ev(`"type":"t","users":["42"]`)
				if path != "/v1/events" {
					body = `{"events":[` + body + `]}`
				}
				rec := serve(e, req{path: path, body: body, auth: &tt.auth})
				if tt.status != 401 {
					if rec.Code != http.StatusAccepted && rec.Code != http.StatusOK {
						t.Fatalf("status = %d; body %s", rec.Code, rec.Body)
					}
					return
				}
				decodeProblem(t, rec, http.StatusUnauthorized, problem.Unauthorized)
				if got := rec.Header().Get("WWW-Authenticate"); got != tt.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
				}
				if calls := s.appended(); len(calls) != 0 {
					t.Errorf("Append called for an unauthenticated request")
				}
				if strings.Contains(logs.String(), "k_bad") || strings.Contains(logs.String(), goodKey) {
					t.Errorf("a key was logged: %s", logs)
				}
			})
		}
	}
}

func TestNoKeys(t *testing.T) {
	e := withEdge(New(&fakeStream{}, nil, Options{}))
	rec := serve(e, req{body: ev(`"type":"t","users":["42"]`)})
	decodeProblem(t, rec, http.StatusUnauthorized, problem.Unauthorized)
}

func TestMediaType(t *testing.T) {
	tests := []struct {
		contentType string
		encoding    string
		status      int
	}{
		{"application/json", "", 202},
		{"application/json; charset=utf-8", "", 202},
		{"Application/JSON;charset=UTF-8", "", 202},
		{"application/json", "identity", 202},
		{"", "", 415},
		{"text/plain", "", 415},
		{"application/x-www-form-urlencoded", "", 415},
		{"application/problem+json", "", 415},
		{"application/json-seq", "", 415},
		{"application/json; charset", "", 415}, // malformed parameter
		{"application/json", "gzip", 415},
	}
	for _, tt := range tests {
		t.Run(tt.contentType+"/"+tt.encoding, func(t *testing.T) {
			e, _ := newTestEcho(t, &fakeStream{}, Options{})
			r := req{body: ev(`"type":"t","users":["42"]`), contentType: ptr(tt.contentType)}
			if tt.encoding != "" {
				r.header = map[string]string{"Content-Encoding": tt.encoding}
			}
			rec := serve(e, r)
			if tt.status == 202 {
				if rec.Code != 202 {
					t.Fatalf("status = %d, want 202; body %s", rec.Code, rec.Body)
				}
				return
			}
			decodeProblem(t, rec, http.StatusUnsupportedMediaType, problem.UnsupportedMediaType)
		})
	}
}

func TestTooLarge(t *testing.T) {
	const limit = 256
	fits := ev(`"type":"t","channel":"c","data":"` + strings.Repeat("x", limit-36) + `"`)
	if len(fits) != limit {
		t.Fatalf("len(fits) = %d", len(fits))
	}
	over := fits[:len(fits)-2] + `x"}`
	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"at the limit", fits, false, 202},
		{"at the limit, chunked", fits, true, 202},
		{"over the limit", over, false, 413},
		{"over the limit, chunked", over, true, 413},
		{"far over the limit, chunked", strings.Repeat(" ", 1<<20) + fits, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStream{}
			e, _ := newTestEcho(t, s, Options{MaxBody: limit})
			rec := serve(e, req{body: tt.body, chunked: tt.chunked})
			if tt.status == 202 {
				if rec.Code != 202 {
					t.Fatalf("status = %d, want 202; body %s", rec.Code, rec.Body)
				}
				return
			}
			decodeProblem(t, rec, http.StatusRequestEntityTooLarge, problem.PayloadTooLarge)
			if len(s.appended()) != 0 {
				t.Error("Append called for an oversized body")
			}
		})
	}
}

func TestDefaultLimit(t *testing.T) {
	e, _ := newTestEcho(t, &fakeStream{}, Options{})
	body := ev(`"type":"t","channel":"c","data":"` + strings.Repeat("x", 64<<10) + `"`)
	decodeProblem(t, serve(e, req{body: body}), http.StatusRequestEntityTooLarge, problem.PayloadTooLarge)
}

func TestAppendFails(t *testing.T) {
	tests := []struct {
		name   string
		stream *fakeStream
		status int
		typ    problem.Type
	}{
		{"unavailable", &fakeStream{err: bridge.ErrUnavailable}, 503, problem.BrokerUnavailable},
		{"unavailable, wrapped", &fakeStream{err: fmt.Errorf("xadd hookwire: %w", bridge.ErrUnavailable)}, 503, problem.BrokerUnavailable},
		{"timeout", &fakeStream{block: true}, 503, problem.BrokerUnavailable},
		{"deadline from the stream", &fakeStream{err: fmt.Errorf("dial: %w", context.DeadlineExceeded)}, 503, problem.BrokerUnavailable},
		{"other error", &fakeStream{err: errors.New("OOM command not allowed: secret detail")}, 500, problem.Internal},
		{"too few results", &fakeStream{short: true}, 500, problem.Internal},
	}
	for _, path := range []string{"/v1/events", "/v1/events/batch"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				e, logs := newTestEcho(t, tt.stream, Options{AppendTimeout: 20 * time.Millisecond})
				body := ev(`"type":"t","users":["42"]`)
				if path != "/v1/events" {
					body = `{"events":[` + body + `,{"type":""}]}`
				}
				rec := serve(e, req{path: path, body: body})
				p := decodeProblem(t, rec, tt.status, tt.typ)
				if tt.status == 503 {
					if got := rec.Header().Get("Retry-After"); got != "1" {
						t.Errorf("Retry-After = %q, want 1", got)
					}
				}
				if strings.Contains(rec.Body.String(), "secret detail") {
					t.Errorf("the cause leaked to the client: %s", rec.Body)
				}
				if tt.status == 500 && !strings.Contains(p.Detail, "request_id") {
					t.Errorf("detail = %q", p.Detail)
				}
				var logged bool
				for _, l := range logLines(t, logs) {
					if l["msg"] == "request failed" && l["request_id"] == p.RequestID && l["err"] != "" {
						logged = true
					}
				}
				if !logged {
					t.Errorf("cause not logged with the request id: %s", logs)
				}
			})
		}
	}
}

func TestBatch(t *testing.T) {
	s := &fakeStream{}
	e, _ := newTestEcho(t, s, Options{MaxBody: 200})
	// evt_dup is accepted first, so the batch sees it as a duplicate.
	if rec := serve(e, req{body: ev(`"id":"evt_dup","type":"t","users":["1"]`)}); rec.Code != 202 {
		t.Fatalf("setup: %d %s", rec.Code, rec.Body)
	}
	body := `{"events":[
		{"id":"evt_a","type":"a","users":["1","1"]},
		{"type":"bad","channel":"no spaces"},
		{"id":"evt_dup","type":"t","users":["1"]},
		{"type":"big","channel":"c","data":"` + strings.Repeat("x", 200) + `"},
		{"type":"c","channel":"c","extra":1},
		{"type":"d","channel":"c"}
	]}`
	rec := serve(e, req{path: "/v1/events/batch", body: body})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	var got struct {
		Results []struct {
			Status    int              `json:"status"`
			ID        string           `json:"id"`
			Cursor    string           `json:"cursor"`
			Duplicate bool             `json:"duplicate"`
			Error     *problem.Details `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	calls := s.appended()
	if len(calls) != 2 || len(calls[1]) != 3 {
		t.Fatalf("Append calls = %d (last with %d events), want the valid events in one call", len(calls), len(calls[len(calls)-1]))
	}
	batch := calls[1]
	if batch[0].ID != "evt_a" || batch[1].ID != "evt_dup" || batch[2].Type != "d" || !strings.HasPrefix(batch[2].ID, "evt_") {
		t.Errorf("appended %v %v %v, want evt_a, evt_dup, a generated id in request order", batch[0].ID, batch[1].ID, batch[2].ID)
	}
	if !reflect.DeepEqual(batch[0].Users, []string{"1"}) {
		t.Errorf("users = %v, want deduped", batch[0].Users)
	}
	type want struct {
		status    int
		id        string
		duplicate bool
		errType   problem.Type
		errField  string
	}
	wants := []want{
		{status: 202, id: "evt_a"},
		{status: 400, errType: problem.InvalidEvent, errField: "channel"},
		{status: 200, id: "evt_dup", duplicate: true},
		{status: 413, errType: problem.PayloadTooLarge},
		{status: 400, errType: problem.InvalidEvent, errField: "extra"},
		{status: 202, id: batch[2].ID},
	}
	if len(got.Results) != len(wants) {
		t.Fatalf("%d results, want %d: %s", len(got.Results), len(wants), rec.Body)
	}
	for i, w := range wants {
		r := got.Results[i]
		if r.Status != w.status || r.ID != w.id || r.Duplicate != w.duplicate {
			t.Errorf("results[%d] = %+v, want %+v", i, r, w)
			continue
		}
		if w.errType == "" {
			if r.Error != nil || r.Cursor == "" {
				t.Errorf("results[%d] = %+v, want a cursor and no error", i, r)
			}
			continue
		}
		if r.Error == nil || r.Error.Type != string(w.errType) || r.Error.Status != w.status || r.Cursor != "" {
			t.Errorf("results[%d] = %+v, want a %s problem", i, r, w.errType)
			continue
		}
		if w.errField != "" && (len(r.Error.Errors) != 1 || r.Error.Errors[0].Field != w.errField) {
			t.Errorf("results[%d].error.errors = %+v, want field %s", i, r.Error.Errors, w.errField)
		}
	}
	if got.Results[2].Cursor != calls[0][0].Cursor.String() {
		t.Errorf("duplicate cursor = %s, want the original %s", got.Results[2].Cursor, calls[0][0].Cursor)
	}
}

func TestBatchAllInvalid(t *testing.T) {
	s := &fakeStream{err: errors.New("must not be called")}
	e, _ := newTestEcho(t, s, Options{})
	rec := serve(e, req{path: "/v1/events/batch", body: `{"events":[{"type":""},{}]}`})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	want := `{"results":[{"status":400,"error":{"type":"https://hookwire.dev/problems/invalid-event","title":"Invalid event","status":400,"detail":"type: is required","errors":[{"field":"type","reason":"is required"}]}},` +
		`{"status":400,"error":{"type":"https://hookwire.dev/problems/invalid-event","title":"Invalid event","status":400,"detail":"type: is required","errors":[{"field":"type","reason":"is required"}]}}]}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

func TestBatchInvalid(t *testing.T) {
	one := ev(`"type":"t","channel":"c"`)
	many := func(n int) string { return `{"events":[` + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + `]}` }
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"no events", `{"events":[]}`, "events"},
		{"1001 events", many(1001), "events"},
		{"events missing", `{}`, "events"},
		{"events null", `{"events":null}`, "events"},
		{"events not an array", `{"events":{"type":"t"}}`, "events"},
		{"element not an object", `{"events":[` + one + `,42]}`, "events[1]"},
		{"null element", `{"events":[null]}`, "events[0]"},
		{"unknown field", `{"events":[` + one + `],"more":true}`, "more"},
		{"duplicate events", `{"events":[` + one + `],"events":[` + one + `]}`, "events"},
		{"an array", `[` + one + `]`, ""},
		{"trailing data", many(1) + "]", ""},
		{"malformed element", `{"events":[{"type":}]}`, ""},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStream{}
			e, _ := newTestEcho(t, s, Options{})
			rec := serve(e, req{path: "/v1/events/batch", body: tt.body})
			p := decodeProblem(t, rec, http.StatusBadRequest, problem.InvalidEvent)
			if tt.field == "" && len(p.Errors) != 0 || tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
				t.Errorf("errors = %+v, want field %q", p.Errors, tt.field)
			}
			if len(s.appended()) != 0 {
				t.Error("Append called for an invalid batch")
			}
		})
	}
	t.Run("1000 events", func(t *testing.T) {
		s := &fakeStream{}
		e, _ := newTestEcho(t, s, Options{})
		rec := serve(e, req{path: "/v1/events/batch", body: many(1000)})
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d; body %.300s", rec.Code, rec.Body)
		}
		if calls := s.appended(); len(calls) != 1 || len(calls[0]) != 1000 {
			t.Errorf("want one Append of 1000 events")
		}
	})
}

func TestBatchTooLarge(t *testing.T) {
	e, _ := newTestEcho(t, &fakeStream{}, Options{MaxBody: 100, MaxBatchBody: 1000})
	body := `{"events":[` + ev(`"type":"t","channel":"c","data":"`+strings.Repeat("x", 1000)+`"`) + `]}`
	decodeProblem(t, serve(e, req{path: "/v1/events/batch", body: body}), http.StatusRequestEntityTooLarge, problem.PayloadTooLarge)
	decodeProblem(t, serve(e, req{path: "/v1/events/batch", body: body, chunked: true}), http.StatusRequestEntityTooLarge, problem.PayloadTooLarge)
	// The single-event route keeps its own limit.
	decodeProblem(t, serve(e, req{body: ev(`"type":"t","channel":"c","data":"` + strings.Repeat("x", 100) + `"`)}), http.StatusRequestEntityTooLarge, problem.PayloadTooLarge)
}

func TestBatchMediaType(t *testing.T) {
	e, _ := newTestEcho(t, &fakeStream{}, Options{})
	rec := serve(e, req{path: "/v1/events/batch", body: `{"events":[{"type":"t","channel":"c"}]}`, contentType: ptr("text/json")})
	decodeProblem(t, rec, http.StatusUnsupportedMediaType, problem.UnsupportedMediaType)
}
