package edge

import (
	"encoding/json"
	"errors"
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
