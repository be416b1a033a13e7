package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/problem"
	"github.com/labstack/echo/v4"
)

const specPath = "../openapi.yaml"

// loadSpec loads and validates openapi.yaml, examples included.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("%s is invalid: %v", specPath, err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %s, want 3.0.3", doc.OpenAPI)
	}
	return doc
}

func TestOpenAPIValid(t *testing.T) { loadSpec(t) }

// stubOperational mounts stand-ins for the endpoints cmd/hookwire adds, in
// the shapes the spec gives them.
func stubOperational(e *echo.Echo) {
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", func(c echo.Context) error {
		if c.QueryParam("down") != "" {
			return c.String(http.StatusServiceUnavailable, "draining\n")
		}
		return c.String(http.StatusOK, "ready\n")
	})
	e.GET("/metrics", func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
		return c.String(http.StatusOK, "# TYPE up gauge\nup 1\n")
	})
}

// specAuth checks that a request presents the credentials of a security
// scheme, not that they are right: that is the server's job.
func specAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header
	switch s := in.SecurityScheme; s.Type {
	case "http":
		if scheme, cred, _ := strings.Cut(h.Get("Authorization"), " "); !strings.EqualFold(scheme, s.Scheme) || cred == "" {
			return fmt.Errorf("no %s credentials", s.Scheme)
		}
	case "apiKey":
		if h.Get(s.Name) == "" {
			return fmt.Errorf("no %s header", s.Name)
		}
	default:
		return fmt.Errorf("unexpected scheme type %s", s.Type)
	}
	return nil
}

// openAPICase is one request run through the server and checked against
// the spec. specAccepts says whether the spec's request schema admits the
// request: a request the server refuses with 400, 401 or 415 must be one
// the spec refuses too, unless the spec cannot express the rule.
type openAPICase struct {
	name        string
	method      string
	path        string
	body        string
	header      map[string]string // replaces the defaults (a good key, application/json); "" deletes
	stream      *fakeStream
	before      []string // bodies POSTed to /v1/events first
	status      int
	specAccepts bool
}

func TestOpenAPIConformance(t *testing.T) {
	doc := loadSpec(t)
	valid := ev(`"id":"evt_oa","type":"balance.updated","users":["42"],"data":{"balance":"10.00"}`)
	cases := []openAPICase{
		{name: "202", body: valid, status: 202, specAccepts: true},
		{name: "202 channel with charset", body: ev(`"type":"t","channel":"prices.EURUSD"`), header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, status: 202, specAccepts: true},
		{name: "200 duplicate", body: valid, before: []string{valid}, status: 200, specAccepts: true},
		{name: "400 missing type", body: ev(`"users":["42"]`), status: 400},
		{name: "400 type too long", body: ev(`"type":"` + strings.Repeat("t", 129) + `","users":["42"]`), status: 400},
		{name: "400 control character in type", body: ev(`"type":"a\tb","users":["42"]`), status: 400},
		{name: "400 empty id", body: ev(`"id":"","type":"t","users":["42"]`), status: 400},
		{name: "400 bad channel", body: ev(`"type":"t","channel":"a b"`), status: 400},
		{name: "400 empty channel", body: ev(`"type":"t","channel":""`), status: 400},
		{name: "400 control character in user", body: ev(`"type":"t","users":["a\u0000"]`), status: 400},
		{name: "400 too many users", body: ev(`"type":"t","users":[` + users(1001) + `]`), status: 400},
		{name: "400 neither users nor channel", body: ev(`"type":"t"`), status: 400},
		{name: "400 empty users without channel", body: ev(`"type":"t","users":[]`), status: 400},
		{name: "400 unknown field", body: ev(`"type":"t","channel":"c","extra":1`), status: 400},
		{name: "400 wrong type", body: ev(`"type":"t","users":"42"`), status: 400},
		{name: "400 malformed", body: `{"type":}`, status: 400},
		// JSON admits no data after the value; kin-openapi's decoder
		// stops reading at the end of the first one.
		{name: "400 trailing data", body: ev(`"type":"t","channel":"c"`) + `{}`, status: 400, specAccepts: true},
		// User ids are limited in bytes (128), JSON Schema counts
		// characters: the spec admits 43 three-byte characters.
		{name: "400 user too many bytes", body: ev(`"type":"t","users":["` + strings.Repeat("€", 43) + `"]`), status: 400, specAccepts: true},
		{name: "401 missing credentials", body: valid, header: map[string]string{"Authorization": ""}, status: 401},
		{name: "401 unknown key", body: valid, header: map[string]string{"Authorization": "Bearer k_unknown"}, status: 401, specAccepts: true},
		{name: "413", body: ev(`"type":"t","channel":"c","data":"` + strings.Repeat("x", 64<<10) + `"`), status: 413, specAccepts: true},
		{name: "415", body: valid, header: map[string]string{"Content-Type": "text/plain"}, status: 415},
		{name: "503", body: valid, stream: &fakeStream{err: bridge.ErrUnavailable}, status: 503, specAccepts: true},
		{name: "500", body: valid, stream: &fakeStream{err: errors.New("bug")}, status: 500, specAccepts: true},

		{name: "batch mixed", path: "/v1/events/batch", before: []string{valid}, body: `{"events":[` +
			valid + `,` +
			ev(`"type":"t","channel":"c"`) + `,` +
			ev(`"type":"t","channel":"bad channel"`) + `,` +
			ev(`"type":"t","channel":"c","data":"`+strings.Repeat("x", 64<<10)+`"`) + `,` +
			ev(`"type":"t","users":["42"],"unknown":true`) + `]}`,
			status: 200, specAccepts: true},
		{name: "batch 400 empty", path: "/v1/events/batch", body: `{"events":[]}`, status: 400},
		{name: "batch 400 too many", path: "/v1/events/batch", body: `{"events":[` + strings.TrimSuffix(strings.Repeat(ev(`"type":"t","channel":"c"`)+",", 1001), ",") + `]}`, status: 400},
		{name: "batch 400 not objects", path: "/v1/events/batch", body: `{"events":[1,2]}`, status: 400},
		{name: "batch 400 no events", path: "/v1/events/batch", body: `{"event":[]}`, status: 400},
		{name: "batch 401", path: "/v1/events/batch", body: `{"events":[` + valid + `]}`, header: map[string]string{"Authorization": "Basic eDp5"}, status: 401},
		{name: "batch 413", path: "/v1/events/batch", body: `{"events":[` + strings.TrimSuffix(strings.Repeat(ev(`"type":"t","channel":"c","data":"`+strings.Repeat("x", 60<<10)+`"`)+",", 70), ",") + `]}`, status: 413, specAccepts: true},
		{name: "batch 415", path: "/v1/events/batch", body: `{"events":[` + valid + `]}`, header: map[string]string{"Content-Type": "application/xml"}, status: 415},
		{name: "batch 503", path: "/v1/events/batch", body: `{"events":[` + valid + `]}`, stream: &fakeStream{err: bridge.ErrUnavailable}, status: 503, specAccepts: true},

		{name: "healthz", method: "GET", path: "/healthz", status: 200, specAccepts: true},
		{name: "readyz", method: "GET", path: "/readyz", status: 200, specAccepts: true},
		{name: "readyz 503", method: "GET", path: "/readyz?down=1", status: 503, specAccepts: true},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, specAccepts: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runOpenAPICase(t, doc, tc)
		})
	}
}

func runOpenAPICase(t *testing.T, doc *openapi3.T, tc openAPICase) {
	if tc.method == "" {
		tc.method = http.MethodPost
	}
	if tc.path == "" {
		tc.path = "/v1/events"
	}
	s := tc.stream
	if s == nil {
		s = &fakeStream{}
	}
	e, _ := newTestEcho(t, s, Options{})
	stubOperational(e)
	srv := httptest.NewServer(e)
	defer srv.Close()
	router := newSpecRouter(t, doc, srv.URL)

	newReq := func(path, body string, header map[string]string) *http.Request {
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		r, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+path, rb)
		if err != nil {
			t.Fatal(err)
		}
		if tc.method == http.MethodPost {
			r.Header.Set("Authorization", "Bearer "+goodKey)
			r.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
		return r
	}
	for _, b := range tc.before {
		resp, err := srv.Client().Do(newReq("/v1/events", b, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	resp, err := srv.Client().Do(newReq(tc.path, tc.body, tc.header))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != tc.status {
		t.Fatalf("status = %d, want %d; body %.500s", resp.StatusCode, tc.status, body)
	}

	// The same request again, for the validator.
	vreq := newReq(tc.path, tc.body, tc.header)
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		t.Fatalf("%s %s is not in the spec: %v", tc.method, tc.path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: specAuth},
	}
	reqErr := openapi3filter.ValidateRequest(t.Context(), in)
	switch {
	case tc.specAccepts && reqErr != nil:
		t.Errorf("the spec refuses a request the server answers %d: %v", tc.status, reqErr)
	case !tc.specAccepts && reqErr == nil:
		t.Errorf("the spec admits a request the server refuses with %d", tc.status)
	}

	err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	})
	if err != nil {
		t.Errorf("the response does not match the spec: %v\nbody %.500s", err, body)
	}
}

func newSpecRouter(t *testing.T, doc *openapi3.T, serverURL string) routers.Router {
	t.Helper()
	d := *doc
	d.Servers = openapi3.Servers{{URL: serverURL}}
	router, err := gorillamux.NewRouter(&d)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// TestOpenAPIProblemsOffSpec checks the answers for paths and methods the
// spec has no operation for: still problems of the spec's Problem schema.
func TestOpenAPIProblemsOffSpec(t *testing.T) {
	doc := loadSpec(t)
	schema := doc.Components.Schemas["Problem"].Value
	e, _ := newTestEcho(t, &fakeStream{}, Options{})
	srv := httptest.NewServer(e)
	defer srv.Close()
	router := newSpecRouter(t, doc, srv.URL)
	tests := []struct {
		method, path string
		status       int
		routeErr     error
	}{
		{http.MethodGet, "/v1/nope", 404, routers.ErrPathNotFound},
		{http.MethodGet, "/v1/events", 405, routers.ErrMethodNotAllowed},
		{http.MethodPut, "/v1/events/batch", 405, routers.ErrMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.method, tt.path), func(t *testing.T) {
			r, _ := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			if _, _, err := router.FindRoute(r); !errors.Is(err, tt.routeErr) {
				t.Errorf("spec route: %v, want %v", err, tt.routeErr)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var v any
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				t.Fatal(err)
			}
			if err := schema.VisitJSON(v); err != nil {
				t.Errorf("body is not a Problem: %v", err)
			}
		})
	}
}

// TestOpenAPIRoutes checks that the spec documents exactly the routes the
// server has: this package's and the operational endpoints cmd/hookwire
// adds (stubbed here). /v1/ws is asyncapi.yaml's; / and the demo assets
// are not API.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadSpec(t)
	e, _ := newTestEcho(t, &fakeStream{}, Options{})
	stubOperational(e)

	var served, documented []string
	for _, r := range e.Routes() {
		// Echo's ":name" is OpenAPI's "{name}".
		served = append(served, r.Method+" "+regexp.MustCompile(`:([a-z]+)`).ReplaceAllString(r.Path, "{$1}"))
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("served routes\n\t%s\ndocumented operations\n\t%s", strings.Join(served, "\n\t"), strings.Join(documented, "\n\t"))
	}
}
