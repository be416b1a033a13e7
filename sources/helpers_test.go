package sources

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
)

// Test secrets. The Stripe one is a real-format endpoint secret.
const (
	stripeSecret  = "whsec_test_5TkCpM2yWq9nX3vB7dLr"
	stripeSecret2 = "whsec_test_rotated_9yQ2k7Lm"
	githubSecret  = "gh-secret-It's a Secret to Everybody"
	shopifySecret = "shpss_0123456789abcdef"
	slackSecret   = "8f742231b10e8888abcd99yyyzzz85a5"
	hmacSecret    = "plain hmac secret"
	swSecret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// swKey is the Ed25519 key pair of the v1a tests.
var swKey = ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef"))

func swPublic() string {
	return "whpk_" + base64.StdEncoding.EncodeToString(swKey.Public().(ed25519.PublicKey))
}

// env returns a Getenv over m.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// testEnv holds every test secret.
var testEnv = env(map[string]string{
	"STRIPE":   stripeSecret,
	"STRIPE2":  stripeSecret2,
	"GITHUB":   githubSecret,
	"SHOPIFY":  shopifySecret,
	"SLACK":    slackSecret,
	"HMAC":     hmacSecret,
	"SW":       swSecret,
	"SW_PK":    swPublic(),
	"SW_WRONG": "whsec_" + base64.StdEncoding.EncodeToString([]byte("another sixteen+ bytes")),
})

// mustParse parses a sources file with testEnv.
func mustParse(t testing.TB, yaml string) *Set {
	t.Helper()
	set, err := Parse([]byte(yaml), Options{Getenv: testEnv})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return set
}

func mustSource(t testing.TB, set *Set, name string) *Source {
	t.Helper()
	src, ok := set.Lookup(name)
	if !ok {
		t.Fatalf("no source %q", name)
	}
	return src
}

func macHex(newHash func() hash.Hash, key string, parts ...string) string {
	return hex.EncodeToString(mac(newHash, key, parts...))
}

func mac(newHash func() hash.Hash, key string, parts ...string) []byte {
	m := hmac.New(newHash, []byte(key))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// Signers: each returns the headers a provider sends for body at ts.

func stripeHeaders(secret string, body []byte, ts time.Time) http.Header {
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts})
	return http.Header{"Stripe-Signature": {sp.Header}}
}

func githubHeaders(secret string, body []byte, _ time.Time) http.Header {
	return http.Header{
		"X-Hub-Signature-256": {"sha256=" + macHex(sha256.New, secret, string(body))},
		"X-Github-Delivery":   {"72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		"X-Github-Event":      {"push"},
	}
}

func shopifyHeaders(secret string, body []byte, _ time.Time) http.Header {
	return http.Header{
		"X-Shopify-Hmac-Sha256": {base64.StdEncoding.EncodeToString(mac(sha256.New, secret, string(body)))},
		"X-Shopify-Webhook-Id":  {"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
		"X-Shopify-Topic":       {"orders/create"},
	}
}

func slackHeaders(secret string, body []byte, ts time.Time) http.Header {
	t := strconv.FormatInt(ts.Unix(), 10)
	return http.Header{
		"X-Slack-Request-Timestamp": {t},
		"X-Slack-Signature":         {"v0=" + macHex(sha256.New, secret, "v0:"+t+":"+string(body))},
	}
}

func swHeaders(secret string, body []byte, ts time.Time) http.Header {
	id := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	t := strconv.FormatInt(ts.Unix(), 10)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		key = []byte(secret)
	}
	sig := base64.StdEncoding.EncodeToString(mac(sha256.New, string(key), id+"."+t+"."+string(body)))
	return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {t}, "Webhook-Signature": {"v1," + sig}}
}

func swEdHeaders(priv ed25519.PrivateKey, body []byte, ts time.Time) http.Header {
	id := "msg_ed25519"
	t := strconv.FormatInt(ts.Unix(), 10)
	sig := ed25519.Sign(priv, []byte(id+"."+t+"."+string(body)))
	return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {t}, "Webhook-Signature": {"v1a," + base64.StdEncoding.EncodeToString(sig)}}
}

func hmacHeaders(alg string, b64 bool, prefix string) func(string, []byte, time.Time) http.Header {
	return func(secret string, body []byte, _ time.Time) http.Header {
		nh := map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New, "sha1": sha1.New}[alg]
		m := mac(nh, secret, string(body))
		enc := hex.EncodeToString(m)
		if b64 {
			enc = base64.StdEncoding.EncodeToString(m)
		}
		return http.Header{"X-Signature": {prefix + enc}, "X-Delivery": {"d-1"}}
	}
}
