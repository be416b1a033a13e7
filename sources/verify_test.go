package sources

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v82/webhook"
)

const schemesFile = `
sources:
  - name: stripe
    verify: {scheme: stripe, secret_env: [STRIPE_OLD_UNSET_OK, STRIPE], tolerance: 5m}
    rules: [{type: '"t"', users: '["u"]'}]
  - name: github
    verify: {scheme: github, secret_env: GITHUB}
    rules: [{type: '"t"', users: '["u"]'}]
  - name: shopify
    verify: {scheme: shopify, secret_env: SHOPIFY}
    rules: [{type: '"t"', users: '["u"]'}]
  - name: slack
    verify: {scheme: slack, secret_env: SLACK, tolerance: 300}
    rules: [{type: '"t"', users: '["u"]'}]
  - name: sw
    verify: {scheme: standard-webhooks, secret_env: [SW, SW_PK]}
    rules: [{type: '"t"', users: '["u"]'}]
  - name: hmac
    verify: {scheme: hmac, secret_env: HMAC, header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512=", id_header: X-Delivery}
    rules: [{type: '"t"', users: '["u"]'}]
  - name: hmac1
    verify: {scheme: hmac, secret_env: HMAC, header: X-Signature, algorithm: sha1}
    rules: [{type: '"t"', users: '["u"]'}]
`

type scheme struct {
	source      string
	secret      string
	sign        func(secret string, body []byte, ts time.Time) http.Header
	timestamped bool
	wantID      string // delivery id of the test body
}

var testBody = []byte(`{"id":"evt_1","event_id":"Ev1","type":"customer.updated","data":{"object":{"id":"cus_1","metadata":{"user_id":"42"}}}}`)

func schemes() []scheme {
	return []scheme{
		{"stripe", stripeSecret, stripeHeaders, true, "evt_1"},
		{"github", githubSecret, githubHeaders, false, "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{"shopify", shopifySecret, shopifyHeaders, false, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
		{"slack", slackSecret, slackHeaders, true, "Ev1"},
		{"sw", swSecret, swHeaders, true, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
		{"hmac", hmacSecret, hmacHeaders("sha512", true, "sha512="), false, "d-1"},
		{"hmac1", hmacSecret, hmacHeaders("sha1", false, ""), false, ""},
	}
}

func loadSchemes(t *testing.T) *Set {
	t.Helper()
	e := map[string]string{}
	for _, k := range []string{"STRIPE", "GITHUB", "SHOPIFY", "SLACK", "SW", "SW_PK", "HMAC"} {
		e[k] = testEnv(k)
	}
	e["STRIPE_OLD_UNSET_OK"] = stripeSecret2
	set, err := Parse([]byte(schemesFile), Options{Getenv: env(e)})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestSchemes(t *testing.T) {
	set := loadSchemes(t)
	now := time.Unix(1_800_000_000, 0)
	for _, sc := range schemes() {
		t.Run(sc.source, func(t *testing.T) {
			src := mustSource(t, set, sc.source)
			h := sc.sign(sc.secret, testBody, now)
			d, err := src.Verify(context.Background(), h, testBody, now)
			if err != nil {
				t.Fatalf("good signature: %v", err)
			}
			want := sc.wantID
			if want == "" {
				want = "sha256:"
			}
			if !strings.HasPrefix(d.ID, want) {
				t.Errorf("delivery id %q, want %q", d.ID, want)
			}

			tampered := []byte(strings.Replace(string(testBody), "42", "43", 1))
			expectReject(t, "tampered body", src, h, tampered, now, ReasonBad)
			expectReject(t, "trailing byte", src, h, append(append([]byte{}, testBody...), ' '), now, ReasonBad)
			expectReject(t, "wrong secret", src, sc.sign(sc.secret+"x", testBody, now), testBody, now, ReasonBad)
			expectReject(t, "no headers", src, http.Header{}, testBody, now, ReasonMissing)
			if sc.timestamped {
				expectReject(t, "stale", src, sc.sign(sc.secret, testBody, now.Add(-5*time.Minute-time.Second)), testBody, now, ReasonStale)
				expectReject(t, "future", src, sc.sign(sc.secret, testBody, now.Add(5*time.Minute+time.Second)), testBody, now, ReasonStale)
				if _, err := src.Verify(context.Background(), sc.sign(sc.secret, testBody, now.Add(-5*time.Minute)), testBody, now); err != nil {
					t.Errorf("at the tolerance: %v", err)
				}
			}
		})
	}
}

func expectReject(t *testing.T, what string, src *Source, h http.Header, body []byte, now time.Time, reason string) {
	t.Helper()
	_, err := src.Verify(context.Background(), h, body, now)
	var rj *Rejection
	if !errors.Is(err, ErrUnverified) || !errors.As(err, &rj) {
		t.Errorf("%s: err = %v, want a rejection", what, err)
		return
	}
	if rj.Reason != reason {
		t.Errorf("%s: reason %s (%v), want %s", what, rj.Reason, err, reason)
	}
}

func TestRotation(t *testing.T) {
	set := loadSchemes(t)
	now := time.Now()
	// The first stripe secret is the rotated one.
	src := mustSource(t, set, "stripe")
	for _, s := range []string{stripeSecret, stripeSecret2} {
		if _, err := src.Verify(context.Background(), stripeHeaders(s, testBody, now), testBody, now); err != nil {
			t.Errorf("secret %s: %v", s[:12], err)
		}
	}
	// Stripe sends both signatures while an endpoint secret rolls.
	h := stripeHeaders(stripeSecret, testBody, now)
	h2 := stripeHeaders("whsec_other", testBody, now)
	_, v1b, _ := strings.Cut(h2.Get("Stripe-Signature"), ",")
	h.Set("Stripe-Signature", h.Get("Stripe-Signature")+","+v1b+",v0=deadbeef")
	if _, err := src.Verify(context.Background(), h, testBody, now); err != nil {
		t.Errorf("several v1: %v", err)
	}
	// Standard Webhooks: a v1 (HMAC) and a v1a (Ed25519) key together.
	sw := mustSource(t, set, "sw")
	if _, err := sw.Verify(context.Background(), swEdHeaders(swKey, testBody, now), testBody, now); err != nil {
		t.Errorf("v1a: %v", err)
	}
	hs := swHeaders(swSecret, testBody, now)
	hs.Set("Webhook-Signature", "v1,bm90IGEgcmVhbCBzaWduYXR1cmUgYXQgYWxsLi4uLg== "+hs.Get("Webhook-Signature"))
	if _, err := sw.Verify(context.Background(), hs, testBody, now); err != nil {
		t.Errorf("v1 among others: %v", err)
	}
}

// Stripe's own library is the oracle: a payload it signs verifies, and
// what this package accepts it accepts.
func TestStripeOracle(t *testing.T) {
	set := loadSchemes(t)
	src := mustSource(t, set, "stripe")
	now := time.Now()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: testBody, Secret: stripeSecret, Timestamp: now})
	if err := webhook.ValidatePayload(testBody, sp.Header, stripeSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Verify(context.Background(), http.Header{"Stripe-Signature": {sp.Header}}, testBody, now); err != nil {
		t.Fatal(err)
	}
}

// The Standard Webhooks library is the oracle for v1.
func TestStandardWebhooksOracle(t *testing.T) {
	set := loadSchemes(t)
	src := mustSource(t, set, "sw")
	wh, err := standardwebhooks.NewWebhook(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign("msg_x", now, testBody)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Webhook-Id": {"msg_x"}, "Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)}, "Webhook-Signature": {sig}}
	if err := wh.Verify(testBody, h); err != nil {
		t.Fatal(err)
	}
	d, err := src.Verify(context.Background(), h, testBody, now)
	if err != nil || d.ID != "msg_x" {
		t.Fatalf("Verify = %+v, %v", d, err)
	}
}

func TestSlackChallenge(t *testing.T) {
	set := loadSchemes(t)
	src := mustSource(t, set, "slack")
	now := time.Now()
	body := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	d, err := src.Verify(context.Background(), slackHeaders(slackSecret, body, now), body, now)
	if err != nil || d.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("signed url_verification: %+v, %v", d, err)
	}
	if _, err := src.Verify(context.Background(), http.Header{}, body, now); !errors.Is(err, ErrUnverified) {
		t.Fatalf("unsigned url_verification: %v", err)
	}
}

func TestVerifiedBodyNotJSON(t *testing.T) {
	set := loadSchemes(t)
	src := mustSource(t, set, "github")
	for _, body := range [][]byte{[]byte("payload=%7B%7D"), []byte(`{"a":1} x`), {0xff, '"'}} {
		_, err := src.Verify(context.Background(), githubHeaders(githubSecret, body, time.Now()), body, time.Now())
		if !errors.Is(err, ErrBody) || errors.Is(err, ErrUnverified) {
			t.Errorf("%q: %v, want ErrBody", body, err)
		}
	}
}

func TestRepeatedSignatureHeader(t *testing.T) {
	set := loadSchemes(t)
	src := mustSource(t, set, "github")
	h := githubHeaders(githubSecret, testBody, time.Now())
	h.Add("X-Hub-Signature-256", h.Get("X-Hub-Signature-256"))
	expectReject(t, "repeated", src, h, testBody, time.Now(), ReasonMalformed)
}
