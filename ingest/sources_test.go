package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/sources"
)

const ghSourcesFile = `
sources:
  - name: gh
    verify: {scheme: github, secret_env: GH}
    rules:
      - type: '"repo.pushed"'
        users: '[has(body.payload) ? body.payload.sender.login : body.sender.login]'
`

func ghSigned(body string) *http.Request {
	m := hmac.New(sha256.New, []byte("gh secret"))
	m.Write([]byte(body))
	r := httptest.NewRequest(http.MethodPost, "/v1/sources/gh", strings.NewReader(body))
	r.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	r.Header.Set("X-GitHub-Delivery", "d-1")
	r.Header.Set("Content-Type", "application/json")
	return r
}

func ghSources(t *testing.T) *sources.Set {
	t.Helper()
	set, err := sources.Parse([]byte(ghSourcesFile), sources.Options{Getenv: func(string) string { return "gh secret" }})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// A source whose events cannot be appended answers 503 with Retry-After,
// so that the provider retries; a redelivery after it is not a duplicate.
func TestSourceBrokerUnavailable(t *testing.T) {
	s := &fakeStream{err: bridge.ErrUnavailable}
	e, _ := newTestEcho(t, s, Options{Sources: ghSources(t)})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, ghSigned(`{"sender":{"login":"42"}}`))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "broker-unavailable") {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	s.err = nil
	w = httptest.NewRecorder()
	e.ServeHTTP(w, ghSigned(`{"sender":{"login":"42"}}`))
	if w.Code != http.StatusAccepted || len(s.appended()) != 1 || s.appended()[0][0].Source != "gh" {
		t.Fatalf("after the outage: %d %s", w.Code, w.Body)
	}
}

// Without a sources file every source is a 404.
func TestSourcesNone(t *testing.T) {
	e, _ := newTestEcho(t, &fakeStream{}, Options{})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, ghSigned(`{}`))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no webhook sources are configured") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// An invalid event a rule makes (a user id too long) fails that rule, not
// the request: the webhook is ignored.
func TestSourceInvalidEventIsIgnored(t *testing.T) {
	s := &fakeStream{}
	e, _ := newTestEcho(t, s, Options{Sources: ghSources(t)})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, ghSigned(`{"sender":{"login":"`+strings.Repeat("x", 200)+`"}}`))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ignored":true`) || len(s.appended()) != 0 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// A form-encoded webhook (GitHub's "application/x-www-form-urlencoded"
// content type: payload=<JSON>) is verified over its raw bytes and then
// read as a form; the same bytes sent as JSON are a 400.
func TestSourceFormBody(t *testing.T) {
	s := &fakeStream{}
	e, _ := newTestEcho(t, s, Options{Sources: ghSources(t)})
	body := "payload=" + url.QueryEscape(`{"sender":{"login":"42"}}`)
	r := ghSigned(body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	if w.Code != http.StatusAccepted || len(s.appended()) != 1 {
		t.Fatalf("form: %d %s", w.Code, w.Body)
	}
	// The rule reads the payload object; the default data is the form as JSON.
	if ev := s.appended()[0][0]; len(ev.Users) != 1 || ev.Users[0] != "42" || string(ev.Data) != `{"payload":{"sender":{"login":"42"}}}` {
		t.Errorf("event %+v data %s", ev, ev.Data)
	}
	w = httptest.NewRecorder()
	e.ServeHTTP(w, ghSigned(body))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "application/x-www-form-urlencoded") {
		t.Errorf("form bytes as JSON: %d %s", w.Code, w.Body)
	}
}
