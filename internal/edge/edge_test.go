package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hookwire/hookwire/problem"
)

// TestEveryErrorIsAProblem: whatever a route returns, Echo's own 404 and 405
// included, the answer is problem+json with the request's id, and nothing of
// an internal error's text.
func TestEveryErrorIsAProblem(t *testing.T) {
	e := New(nil)
	e.GET("/plain", func(echo.Context) error { return errors.New("db password wrong") })
	e.GET("/problem", func(echo.Context) error {
		return problem.Wrap(problem.Forbidden.New("channel not allowed"), errors.New("cause"))
	})
	e.POST("/only-post", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	for _, tt := range []struct {
		method, path string
		status       int
		typ          problem.Type
	}{
		{http.MethodGet, "/plain", 500, problem.Internal},
		{http.MethodGet, "/problem", 403, problem.Forbidden},
		{http.MethodGet, "/nope", 404, problem.NotFound},
		{http.MethodGet, "/only-post", 405, problem.MethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Header.Set("X-Request-Id", "rid-1")
		e.ServeHTTP(rec, req)
		var p problem.Details
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != tt.status || p.Type != string(tt.typ) || p.RequestID != "rid-1" {
			t.Errorf("%s %s: %d %s, want %d %s with request_id rid-1", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.typ)
		}
		if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, ct)
		}
		if strings.Contains(rec.Body.String(), "password") || strings.Contains(rec.Body.String(), "cause") {
			t.Errorf("%s %s: the cause shows: %s", tt.method, tt.path, rec.Body)
		}
	}
}

// TestRequestLogLine: at info a request is one line with the answered
// status (an error's too), its route and publisher and a client error's
// text; at warn the logger writes nothing and allocates nothing.
func TestRequestLogLine(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	e := New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: lv})))
	e.GET("/ok/:id", func(c echo.Context) error {
		SetPublisher(c, "billing")
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/bad", func(echo.Context) error { return problem.Wrap(problem.Forbidden.New("channel not allowed"), nil) })
	for _, path := range []string{"/ok/7", "/bad"} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want 2: %s", len(lines), buf.String())
	}
	if l := lines[0]; l["status"] != 204.0 || l["route"] != "/ok/:id" || l["path"] != "/ok/7" || l["publisher"] != "billing" || l["method"] != "GET" {
		t.Errorf("first line %v", l)
	}
	if l := lines[1]; l["status"] != 403.0 || l["err"] != "channel not allowed" || l["publisher"] != nil {
		t.Errorf("second line %v", l)
	}

	lv.Set(slog.LevelWarn)
	buf.Reset()
	req := httptest.NewRequest(http.MethodGet, "/ok/7", nil)
	rec := httptest.NewRecorder()
	h := requestLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: lv})))(func(c echo.Context) error { return nil })
	c := e.NewContext(req, rec)
	allocs := testing.AllocsPerRun(100, func() { _ = h(c) })
	if buf.Len() != 0 || allocs != 0 {
		t.Errorf("at warn: wrote %q, %v allocations a request", buf.String(), allocs)
	}
}
