package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookwire/hookwire/auth"
)

const whSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func signedRequest(t *testing.T, path, id string, ts time.Time, body string) *http.Request {
	t.Helper()
	sig, err := auth.SignWebhook(whSecret, id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	return req
}

func serveReq(h http.Handler, req *http.Request) (*httptest.ResponseRecorder, map[string]any) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	json.Unmarshal(rec.Body.Bytes(), &m)
	return rec, m
}

func TestSignedIngest(t *testing.T) {
	wv, err := auth.NewWebhookVerifier([]string{whSecret}, auth.WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeStream{}
	e, _ := newTestEcho(t, s, Options{Webhooks: wv})
	body := `{"type":"balance.updated","users":["42"]}`

	rec, m := serveReq(e, signedRequest(t, "/v1/events", "msg_1", time.Now(), body))
	if rec.Code != http.StatusAccepted || m["id"] != "msg_1" {
		t.Fatalf("signed POST = %d %v; want 202 with the webhook-id as id", rec.Code, m)
	}
	// A redelivery of the same webhook is a duplicate.
	rec, m = serveReq(e, signedRequest(t, "/v1/events", "msg_1", time.Now(), body))
	if rec.Code != http.StatusOK || m["duplicate"] != true {
		t.Fatalf("replayed webhook = %d %v; want 200 duplicate", rec.Code, m)
	}
	// An id in the body wins over the webhook-id.
	rec, m = serveReq(e, signedRequest(t, "/v1/events", "msg_2", time.Now(), `{"id":"own","type":"t","users":["1"]}`))
	if rec.Code != http.StatusAccepted || m["id"] != "own" {
		t.Fatalf("POST = %d %v", rec.Code, m)
	}
	// Batches: events without id get webhook-id#index.
	rec, m = serveReq(e, signedRequest(t, "/v1/events/batch", "msg_3", time.Now(), `{"events":[{"type":"t","users":["1"]},{"type":"t","users":["2"]}]}`))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"msg_3#1"`) {
		t.Fatalf("signed batch = %d %s", rec.Code, rec.Body)
	}

	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"tampered body", func() *http.Request {
			r := signedRequest(t, "/v1/events", "msg_4", time.Now(), body)
			r.Body = http.NoBody
			r2 := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(strings.Replace(body, "42", "43", 1)))
			r2.Header = r.Header
			return r2
		}},
		{"old timestamp", func() *http.Request {
			return signedRequest(t, "/v1/events", "msg_5", time.Now().Add(-6*time.Minute), body)
		}},
		{"future timestamp", func() *http.Request {
			return signedRequest(t, "/v1/events", "msg_6", time.Now().Add(6*time.Minute), body)
		}},
		{"no signature", func() *http.Request {
			r := signedRequest(t, "/v1/events", "msg_7", time.Now(), body)
			r.Header.Set("webhook-signature", "v1,AAAA")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, m := serveReq(e, tt.req())
			if rec.Code != http.StatusUnauthorized || m["type"] != "https://hookwire.dev/problems/unauthorized" {
				t.Fatalf("= %d %v; want 401", rec.Code, m)
			}
		})
	}
	t.Run("not enabled", func(t *testing.T) {
		e, _ := newTestEcho(t, &fakeStream{}, Options{})
		if rec, _ := serveReq(e, signedRequest(t, "/v1/events", "msg_8", time.Now(), body)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("= %d; want 401", rec.Code)
		}
	})
}

func TestPublisherScope(t *testing.T) {
	keys, err := auth.ParseAPIKeys([]string{"prices:pk_0123456789:channels=prices.*;types=price.*"}, auth.APIKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := withEdge(New(&fakeStream{}, keys, Options{}))
	post := func(path, body string) (*httptest.ResponseRecorder, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer pk_0123456789")
		req.Header.Set("Content-Type", "application/json")
		return serveReq(e, req)
	}
	if rec, m := post("/v1/events", `{"type":"price.tick","channel":"prices.EURUSD"}`); rec.Code != http.StatusAccepted {
		t.Fatalf("in scope = %d %v", rec.Code, m)
	}
	for _, body := range []string{
		`{"type":"price.tick","channel":"news"}`,
		`{"type":"balance.updated","channel":"prices.EURUSD"}`,
		`{"type":"price.tick","users":["42"]}`,
	} {
		if rec, m := post("/v1/events", body); rec.Code != http.StatusForbidden || m["type"] != "https://hookwire.dev/problems/forbidden" {
			t.Errorf("%s = %d %v; want 403", body, rec.Code, m)
		}
	}
	rec, _ := post("/v1/events/batch", `{"events":[{"type":"price.tick","channel":"prices.X"},{"type":"price.tick","channel":"news"}]}`)
	var res struct{ Results []struct{ Status int } }
	json.Unmarshal(rec.Body.Bytes(), &res)
	if rec.Code != 200 || len(res.Results) != 2 || res.Results[0].Status != 202 || res.Results[1].Status != 403 {
		t.Fatalf("batch = %d %s", rec.Code, rec.Body)
	}
}

func TestPublishRateLimit(t *testing.T) {
	e, _ := newTestEcho(t, &fakeStream{}, Options{PublishRate: 2, PublishBurst: 3})
	codes := []int{}
	for range 5 {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"type":"t","users":["1"]}`))
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("Content-Type", "application/json")
		rec, m := serveReq(e, req)
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests {
			if ra := rec.Header().Get("Retry-After"); ra == "" || m["type"] != "https://hookwire.dev/problems/rate-limited" {
				t.Errorf("429 without Retry-After or problem type: %v %v", rec.Header(), m)
			}
		}
	}
	if codes[0] != 202 || codes[2] != 202 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("statuses %v; want 3 accepted then 429s", codes)
	}
	// A batch larger than the burst can never pass.
	req := httptest.NewRequest(http.MethodPost, "/v1/events/batch", strings.NewReader(`{"events":[{"type":"t","users":["1"]},{"type":"t","users":["1"]},{"type":"t","users":["1"]},{"type":"t","users":["1"]}]}`))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	req.Header.Set("Content-Type", "application/json")
	if rec, _ := serveReq(e, req); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("oversized batch = %d", rec.Code)
	}
}

// TestPublishBurstDefaultsToTheRate: without PublishBurst the bucket holds
// the rate's worth of events (at least 1), not a full batch.
func TestPublishBurstDefaultsToTheRate(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{2, 2}, {0.5, 1}, {2.5, 3}, {5000, 5000}} {
		l := newLimiters(tc.rate, 0)
		if l.burst != tc.burst {
			t.Errorf("rate %v: burst %d, want %d", tc.rate, l.burst, tc.burst)
		}
	}
	h := New(&fakeStream{}, nil, Options{PublishRate: 2})
	if h.limits == nil || h.limits.burst != 2 {
		t.Fatalf("Options{PublishRate: 2}: limiter %+v, want a burst of 2", h.limits)
	}
}
