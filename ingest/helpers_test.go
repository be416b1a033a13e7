package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/edge"
	"github.com/hookwire/hookwire/internal/syncbuf"
	"github.com/hookwire/hookwire/problem"
)

const (
	goodKey   = "k_good"
	publisher = "billing"
)

// fakeStream is an in-memory appender. It dedupes by ID like a real
// stream, records every call, and can fail or block instead.
type fakeStream struct {
	mu    sync.Mutex
	calls [][]*bridge.Event
	seen  map[string]bridge.Cursor
	seq   uint64

	err      error // returned by every Append when set
	block    bool  // Append waits for ctx to be done
	short    bool  // Append returns one result too few
	noRecord bool  // for benchmarks: neither record nor dedupe
}

func (f *fakeStream) Append(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	if f.noRecord {
		return make([]bridge.AppendResult, len(evs)), nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, evs)
	if f.seen == nil {
		f.seen = map[string]bridge.Cursor{}
	}
	res := make([]bridge.AppendResult, 0, len(evs))
	for _, ev := range evs {
		if c, ok := f.seen[ev.ID]; ok {
			res = append(res, bridge.AppendResult{Cursor: c, Duplicate: true})
			continue
		}
		f.seq++
		c := bridge.Cursor{Epoch: "e1", MS: 1700000000000, Seq: f.seq}
		f.seen[ev.ID] = c
		ev.Cursor = c
		res = append(res, bridge.AppendResult{Cursor: c})
	}
	if f.short {
		res = res[:len(res)-1]
	}
	return res, nil
}

func (f *fakeStream) appended() [][]*bridge.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]*bridge.Event(nil), f.calls...)
}

type fakeKeys map[string]string

func (k fakeKeys) Publisher(key string) (auth.Publisher, bool) {
	p, ok := k[key]
	return auth.Publisher{Name: p}, ok
}

// newTestEcho returns the process's Echo instance (edge.New) with the
// routes of a Handler over a fake stream with one key, logging into a
// buffer.
func newTestEcho(t testing.TB, s *fakeStream, opts Options) (*echo.Echo, *syncbuf.Buffer) {
	t.Helper()
	logs := new(syncbuf.Buffer)
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = logger
	e := edge.New(logger)
	New(s, fakeKeys{goodKey: publisher}, opts).Register(e)
	return e, logs
}

// withEdge mounts h's routes on an edge.New instance that logs nothing.
func withEdge(h *Handler) *echo.Echo {
	e := edge.New(nil)
	h.Register(e)
	return e
}

// logLines returns the JSON log records in b.
func logLines(t testing.TB, b *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// req describes a test request; the zero value of a header means the
// default (a good key, application/json).
type req struct {
	method, path string
	body         string
	auth         *string
	contentType  *string
	header       map[string]string
	chunked      bool // no Content-Length
}

func ptr(s string) *string { return &s }

func (r req) build() *http.Request {
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	path := r.path
	if path == "" {
		path = "/v1/events"
	}
	var body io.Reader = strings.NewReader(r.body)
	if r.chunked {
		body = io.MultiReader(body) // hides the length from NewRequest
	}
	hr := httptest.NewRequest(method, path, body)
	if r.chunked {
		hr.ContentLength = -1
	}
	auth := "Bearer " + goodKey
	if r.auth != nil {
		auth = *r.auth
	}
	if auth != "" {
		hr.Header.Set("Authorization", auth)
	}
	ct := "application/json"
	if r.contentType != nil {
		ct = *r.contentType
	}
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	return hr
}

func serve(e *echo.Echo, r req) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, r.build())
	return rec
}

// decodeProblem checks rec is a problem+json answer of status and type and
// returns it.
func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, typ problem.Type) problem.Details {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Details
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body: %v", err)
	}
	if p.Type != string(typ) || p.Status != status || p.Title != typ.Title() {
		t.Errorf("problem = %+v, want type %s, status %d, title %q", p, typ, status, typ.Title())
	}
	if rid := rec.Header().Get("X-Request-Id"); p.RequestID != rid || rid == "" {
		t.Errorf("request_id = %q, X-Request-Id = %q; want equal, non-empty", p.RequestID, rid)
	}
	return p
}

func ev(fields string) string { return "{" + fields + "}" }
