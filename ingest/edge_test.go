package ingest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/hookwire/hookwire/problem"
	"github.com/labstack/echo/v4"
)

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		typ                problem.Type
		allow              string
	}{
		{"unknown path", http.MethodGet, "/nope", 404, problem.NotFound, ""},
		{"unknown path, POST", http.MethodPost, "/v1/event", 404, problem.NotFound, ""},
		{"GET events", http.MethodGet, "/v1/events", 405, problem.MethodNotAllowed, "POST"},
		{"DELETE batch", http.MethodDelete, "/v1/events/batch", 405, problem.MethodNotAllowed, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newTestEcho(t, &fakeStream{}, Options{})
			rec := serve(e, req{method: tt.method, path: tt.path, body: "{}"})
			decodeProblem(t, rec, tt.status, tt.typ)
			if tt.allow != "" && !strings.Contains(rec.Header().Get("Allow"), tt.allow) {
				t.Errorf("Allow = %q, want it to list %s", rec.Header().Get("Allow"), tt.allow)
			}
		})
	}
}

func TestHeadProblemHasNoBody(t *testing.T) {
	e, _ := newTestEcho(t, &fakeStream{}, Options{})
	rec := serve(e, req{method: http.MethodHead, path: "/nope"})
	if rec.Code != 404 || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Errorf("HEAD: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"absent", "", false},
		{"valid", "abc-123.X_y", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "abc 123", false},
		{"log forging", "abc\",\"level\":\"ERROR", false},
		{"non-ASCII", "abcé", false},
		{"slash", "a/b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, logs := newTestEcho(t, &fakeStream{}, Options{})
			r := req{method: http.MethodGet, path: "/nope"}
			if tt.in != "" {
				r.header = map[string]string{"X-Request-Id": tt.in}
			}
			rec := serve(e, r)
			got := rec.Header().Get("X-Request-Id")
			if tt.keep && got != tt.in {
				t.Errorf("X-Request-Id = %q, want %q kept", got, tt.in)
			}
			if !tt.keep && (got == tt.in || !regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`).MatchString(got)) {
				t.Errorf("X-Request-Id = %q, want a fresh valid id instead of %q", got, tt.in)
			}
			p := decodeProblem(t, rec, http.StatusNotFound, problem.NotFound) // checks request_id == header
			lines := logLines(t, logs)
			if len(lines) != 1 || lines[0]["msg"] != "request" || lines[0]["request_id"] != p.RequestID {
				t.Errorf("log = %v, want one request line with request_id %s", lines, p.RequestID)
			}
		})
	}
	t.Run("unique", func(t *testing.T) {
		e, _ := newTestEcho(t, &fakeStream{}, Options{})
		a := serve(e, req{method: http.MethodGet, path: "/nope"}).Header().Get("X-Request-Id")
		b := serve(e, req{method: http.MethodGet, path: "/nope"}).Header().Get("X-Request-Id")
		if a == b {
			t.Errorf("two requests got the same id %q", a)
		}
	})
}

func TestRequestLog(t *testing.T) {
	e, logs := newTestEcho(t, &fakeStream{}, Options{})
	e.GET("/v1/ws", func(c echo.Context) error { return echo.ErrUnauthorized })
	serve(e, req{body: ev(`"type":"t","users":["42"],"data":{"secret":"s3cr3t-data"}`)})
	serve(e, req{body: ev(`"type":"t","users":["42"],"bogus":"s3cr3t-field-value"`)})
	serve(e, req{method: http.MethodGet, path: "/v1/ws?token=s3cr3t-token&since=x"})

	out := logs.String()
	for _, secret := range []string{goodKey, "s3cr3t", "token="} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	var requests, accepted int
	for _, l := range logLines(t, logs) {
		switch l["msg"] {
		case "request":
			requests++
			if l["level"] != "INFO" || l["request_id"] == "" || l["status"] == nil || l["path"] == "" {
				t.Errorf("request line %v", l)
			}
		case "event accepted":
			accepted++
			if l["level"] != "DEBUG" || l["publisher"] != publisher || l["event_id"] == "" || l["cursor"] == "" || l["request_id"] == "" {
				t.Errorf("event line %v", l)
			}
		default:
			t.Errorf("unexpected line %v", l)
		}
	}
	if requests != 3 || accepted != 1 {
		t.Errorf("%d request lines, %d event lines; want 3, 1:\n%s", requests, accepted, out)
	}
	lines := logLines(t, logs)
	if lines[1]["publisher"] != publisher || lines[1]["status"] != 202.0 {
		t.Errorf("first request line %v, want publisher and status 202", lines[1])
	}
	if lines[2]["err"] != "bogus: unknown field" || lines[2]["status"] != 400.0 {
		t.Errorf("second request line %v, want the client error", lines[2])
	}
	if lines[3]["path"] != "/v1/ws" || lines[3]["status"] != 401.0 {
		t.Errorf("ws line %v", lines[3])
	}
}

func TestPanic(t *testing.T) {
	e, logs := newTestEcho(t, &fakeStream{}, Options{})
	e.GET("/boom", func(c echo.Context) error { panic("kaboom: private state") })
	rec := serve(e, req{method: http.MethodGet, path: "/boom"})
	p := decodeProblem(t, rec, http.StatusInternalServerError, problem.Internal)
	if strings.Contains(rec.Body.String(), "kaboom") {
		t.Errorf("panic value leaked: %s", rec.Body)
	}
	var found bool
	for _, l := range logLines(t, logs) {
		if l["msg"] == "request failed" {
			found = true
			if l["level"] != "ERROR" || l["request_id"] != p.RequestID ||
				!strings.Contains(l["err"].(string), "kaboom") || !strings.Contains(l["stack"].(string), "edge_test.go") {
				t.Errorf("panic line %v", l)
			}
		}
	}
	if !found {
		t.Errorf("panic not logged:\n%s", logs)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		typ    problem.Type
		detail string
		header [2]string
	}{
		{"echo 413", echo.ErrStatusRequestEntityTooLarge, 413, problem.PayloadTooLarge, "the body is too large", [2]string{}},
		{"echo 429", echo.ErrTooManyRequests, 429, problem.RateLimited, "", [2]string{"Retry-After", "1"}},
		{"echo 403 with message", echo.NewHTTPError(403, "origin not allowed"), 403, problem.Forbidden, "origin not allowed", [2]string{}},
		{"echo 401", echo.ErrUnauthorized, 401, problem.Unauthorized, "", [2]string{"WWW-Authenticate", `Bearer realm="hookwire"`}},
		{"echo 500 hides message", echo.NewHTTPError(500, "db password wrong"), 500, problem.Internal, "", [2]string{}},
		{"echo 503", echo.ErrServiceUnavailable, 503, problem.Unavailable, "", [2]string{"Retry-After", "1"}},
		{"echo 408 is about:blank", echo.NewHTTPError(408), 408, problem.Blank, "", [2]string{}},
		{"problem with header", &problem.Error{Details: problem.RateLimited.New("slow down"), Header: http.Header{"Retry-After": {"7"}}}, 429, problem.RateLimited, "slow down", [2]string{"Retry-After", "7"}},
		{"wrapped problem", errors.Join(errors.New("ctx"), problem.Wrap(problem.Forbidden.New("channel not allowed"), nil)), 403, problem.Forbidden, "channel not allowed", [2]string{}},
		{"plain error", errors.New("secret internals"), 500, problem.Internal, "the server failed to process the request; quote the request_id when reporting it", [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newTestEcho(t, &fakeStream{}, Options{})
			e.GET("/err", func(c echo.Context) error { return tt.err })
			rec := serve(e, req{method: http.MethodGet, path: "/err"})
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			var p problem.Details
			if tt.typ == problem.Blank {
				p = decodeBlank(t, rec)
			} else {
				p = decodeProblem(t, rec, tt.status, tt.typ)
			}
			if p.Detail != tt.detail {
				t.Errorf("detail = %q, want %q", p.Detail, tt.detail)
			}
			if tt.header[0] != "" && rec.Header().Get(tt.header[0]) != tt.header[1] {
				t.Errorf("%s = %q, want %q", tt.header[0], rec.Header().Get(tt.header[0]), tt.header[1])
			}
		})
	}
}

func decodeBlank(t *testing.T, rec *httptest.ResponseRecorder) problem.Details {
	t.Helper()
	if !strings.Contains(rec.Body.String(), `"type":"about:blank","title":"Request Timeout","status":408`) {
		t.Errorf("body = %s", rec.Body)
	}
	return problem.Details{}
}
