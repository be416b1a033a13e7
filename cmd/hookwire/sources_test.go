package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/internal/redistest"
)

// The secrets of the sources tests, as a provider's dashboard shows them.
// Each scheme has an old secret too, for the rotation.
const (
	srcStripeNew  = "whsec_e2eStripeNew0123456789"
	srcStripeOld  = "whsec_e2eStripeOld0123456789"
	srcGitHub     = "e2e github secret"
	srcGitHubOld  = "e2e github secret, the old one"
	srcShopify    = "shpss_e2e0123456789"
	srcShopifyOld = "shpss_e2eOld9876543210"
	srcSlack      = "e2e8f742231b10e8888abcd99yyy"
	srcSlackOld   = "e2eOld42231b10e8888abcd99zzz"
	srcHMAC       = "e2e hmac secret"
	srcHMACOld    = "e2e hmac secret, the old one"
	// The Standard Webhooks Ed25519 (v1a) "secrets" are the sender's key
	// seeds: the receiver is configured with their public keys.
	srcSWSeed    = "e2e ed25519 seed"
	srcSWSeedOld = "e2e ed25519 seed, the old one"
)

var (
	srcSW    = auth.NewWebhookSecret()
	srcSWOld = auth.NewWebhookSecret()
)

// edKey is the Ed25519 key a sender derives from seed (any string).
func edKey(seed string) ed25519.PrivateKey {
	sum := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(sum[:])
}

// edPublic is the whpk_ public key of seed's key, as a receiver configures it.
func edPublic(seed string) string {
	return "whpk_" + base64.StdEncoding.EncodeToString(edKey(seed).Public().(ed25519.PublicKey))
}

const sourcesYAML = `
sources:
  - name: stripe
    verify:
      scheme: stripe
      secret_env: [STRIPE_NEW, STRIPE_OLD]
    rules:
      - name: balance
        when: 'body.type == "customer.updated"'
        type: '"balance.updated"'
        users: '[body.data.object.metadata.user_id]'
        data: '{"balance": body.data.object.balance}'
      - name: account
        when: 'body.type == "customer.updated"'
        type: '"account.updated"'
        channel: '"accounts." + body.data.object.id'
      - name: broken
        when: 'body.type == "invoice.paid"'
        type: '"invoice.paid"'
        users: '[body.data.object.metadata.user_id]'
  - name: github
    verify: {scheme: github, secret_env: [GITHUB_SECRET, GITHUB_OLD]}
    rules:
      - when: 'headers["x-github-event"] == "push"'
        type: '"repo.pushed"'
        users: '[body.sender.login]'
  - name: shopify
    verify: {scheme: shopify, secret_file: SHOPIFY_FILE}
    rules:
      - type: '"order.created"'
        users: '[string(body.customer.id)]'
  - name: slack
    verify: {scheme: slack, secret_env: [SLACK_SECRET, SLACK_OLD]}
    rules:
      - when: 'body.?type.orValue("") == "event_callback"'
        type: '"slack." + body.event.type'
        users: '[body.event.user]'
      - name: command
        when: 'body.?command.orValue("") == "/balance"'
        type: '"balance.asked"'
        users: '[body.user_id]'
        data: '{"text": body.text}'
      - name: action
        when: 'has(body.payload) && body.payload.type == "block_actions"'
        type: '"slack.action"'
        users: '[body.payload.user.id]'
        data: 'body.payload.actions[0].value'
  - name: sw
    verify: {scheme: standard-webhooks, secret_env: [SW_SECRET, SW_OLD]}
    rules:
      - type: 'body.type'
        users: '[body.user]'
  - name: sw-ed
    verify: {scheme: standard-webhooks, secret_env: [SW_PUBLIC, SW_PUBLIC_OLD]}
    rules:
      - type: 'body.type'
        users: '[body.user]'
  - name: custom
    verify: {scheme: hmac, secret_env: [HMAC_SECRET, HMAC_OLD], header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512=", id_header: X-Delivery-Id}
    rules:
      - type: 'body.kind'
        users: '[body.user]'
`

// rotated is sourcesYAML once every old secret is removed from it (the
// Shopify one from its secret file: sourcesEnv).
var rotated = strings.NewReplacer(
	", STRIPE_OLD]", "]", ", GITHUB_OLD]", "]", ", SLACK_OLD]", "]",
	", SW_OLD]", "]", ", SW_PUBLIC_OLD]", "]", ", HMAC_OLD]", "]",
)

// srcScheme is one scheme's test: a body addressed to user 42 and how
// its provider signs it.
type srcScheme struct {
	name        string
	secret      string
	old         string             // the secret a rotation removes
	body        func(n int) string // the n-th distinct delivery
	sign        func(secret, body string, ts time.Time, n int) http.Header
	timestamped bool
	eventType   string
}

func hexMAC(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func srcSchemes() []srcScheme {
	return []srcScheme{
		{name: "stripe", secret: srcStripeNew, old: srcStripeOld, timestamped: true, eventType: "balance.updated",
			body: func(n int) string {
				return fmt.Sprintf(`{"id":"evt_e2e_%d","object":"event","type":"customer.updated","data":{"object":{"id":"cus_1","object":"customer","balance":%d,"metadata":{"user_id":"42"}}}}`, n, 1000+n)
			},
			sign: func(secret, body string, ts time.Time, _ int) http.Header {
				sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(body), Secret: secret, Timestamp: ts})
				return http.Header{"Stripe-Signature": {sp.Header}, "Content-Type": {"application/json; charset=utf-8"}}
			}},
		{name: "github", secret: srcGitHub, old: srcGitHubOld, eventType: "repo.pushed",
			body: func(n int) string {
				return fmt.Sprintf(`{"ref":"refs/heads/main","after":"%d","sender":{"login":"42"}}`, n)
			},
			sign: func(secret, body string, _ time.Time, n int) http.Header {
				return http.Header{"X-Hub-Signature-256": {"sha256=" + hexMAC(secret, body)}, "X-Github-Event": {"push"},
					"X-Github-Delivery": {fmt.Sprintf("gh-delivery-%d", n)}, "Content-Type": {"application/json"}}
			}},
		{name: "shopify", secret: srcShopify, old: srcShopifyOld, eventType: "order.created",
			body: func(n int) string { return fmt.Sprintf(`{"id":%d,"customer":{"id":42}}`, 820982911946154508+n) },
			sign: func(secret, body string, _ time.Time, n int) http.Header {
				m := hmac.New(sha256.New, []byte(secret))
				m.Write([]byte(body))
				return http.Header{"X-Shopify-Hmac-Sha256": {base64.StdEncoding.EncodeToString(m.Sum(nil))},
					"X-Shopify-Webhook-Id": {fmt.Sprintf("b54557e4-%d", n)}, "X-Shopify-Topic": {"orders/create"}, "Content-Type": {"application/json"}}
			}},
		{name: "slack", secret: srcSlack, old: srcSlackOld, timestamped: true, eventType: "slack.message",
			body: func(n int) string {
				return fmt.Sprintf(`{"type":"event_callback","event_id":"Ev%d","event":{"type":"message","user":"42","text":"hi"}}`, n)
			},
			sign: func(secret, body string, ts time.Time, _ int) http.Header {
				t := strconv.FormatInt(ts.Unix(), 10)
				return http.Header{"X-Slack-Request-Timestamp": {t}, "X-Slack-Signature": {"v0=" + hexMAC(secret, "v0:"+t+":"+body)}, "Content-Type": {"application/json"}}
			}},
		{name: "sw", secret: srcSW, old: srcSWOld, timestamped: true, eventType: "invoice.sent",
			body: func(n int) string { return fmt.Sprintf(`{"type":"invoice.sent","user":"42","n":%d}`, n) },
			sign: func(secret, body string, ts time.Time, n int) http.Header {
				id := fmt.Sprintf("msg_e2e_%d", n)
				sig, err := auth.SignWebhook(secret, id, ts, []byte(body))
				if err != nil {
					// secret is not a whsec_: the wrong-secret case.
					sig = "v1," + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 32)))
				}
				return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Webhook-Signature": {sig}, "Content-Type": {"application/json"}}
			}},
		{name: "sw-ed", secret: srcSWSeed, old: srcSWSeedOld, timestamped: true, eventType: "invoice.signed",
			body: func(n int) string { return fmt.Sprintf(`{"type":"invoice.signed","user":"42","n":%d}`, n) },
			sign: func(seed, body string, ts time.Time, n int) http.Header {
				// v1a: Ed25519 over "<id>.<timestamp>.<body>", the sender's key.
				id := fmt.Sprintf("msg_e2e_ed_%d", n)
				t := strconv.FormatInt(ts.Unix(), 10)
				sig := ed25519.Sign(edKey(seed), []byte(id+"."+t+"."+body))
				return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {t}, "Webhook-Signature": {"v1a," + base64.StdEncoding.EncodeToString(sig)}, "Content-Type": {"application/json"}}
			}},
		{name: "custom", secret: srcHMAC, old: srcHMACOld, eventType: "thing.done",
			body: func(n int) string { return fmt.Sprintf(`{"kind":"thing.done","user":"42","n":%d}`, n) },
			sign: func(secret, body string, _ time.Time, n int) http.Header {
				m := hmac.New(sha512.New, []byte(secret))
				m.Write([]byte(body))
				return http.Header{"X-Signature": {"sha512=" + base64.StdEncoding.EncodeToString(m.Sum(nil))}, "X-Delivery-Id": {fmt.Sprintf("d-%d", n)}, "Content-Type": {"application/json"}}
			}},
	}
}

// sourcesEnv writes the sources file (and the Shopify secret file, with
// the new and the old secret) into dir and returns the environment of a
// replica serving it.
func sourcesEnv(t *testing.T, dir, yaml string) (string, []string) {
	t.Helper()
	writeAtomic(t, shopifyFile(dir), "# the app's client secret, then the one being rotated out\n"+srcShopify+"\n"+srcShopifyOld+"\n")
	path := filepath.Join(dir, "sources.yaml")
	writeAtomic(t, path, strings.ReplaceAll(yaml, "SHOPIFY_FILE", shopifyFile(dir)))
	return path, []string{
		"HOOKWIRE_API_KEYS=" + testAPIKey,
		"HOOKWIRE_JWT_SECRET=" + testSecret,
		"HOOKWIRE_SOURCES_FILE=" + path,
		"STRIPE_NEW=" + srcStripeNew,
		"STRIPE_OLD=" + srcStripeOld,
		"GITHUB_SECRET=" + srcGitHub,
		"GITHUB_OLD=" + srcGitHubOld,
		"SLACK_SECRET=" + srcSlack,
		"SLACK_OLD=" + srcSlackOld,
		"SW_SECRET=" + srcSW,
		"SW_OLD=" + srcSWOld,
		"SW_PUBLIC=" + edPublic(srcSWSeed),
		"SW_PUBLIC_OLD=" + edPublic(srcSWSeedOld),
		"HMAC_SECRET=" + srcHMAC,
		"HMAC_OLD=" + srcHMACOld,
	}
}

func shopifyFile(dir string) string { return filepath.Join(dir, "shopify.secret") }

func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// postSource posts a webhook to /v1/sources/<name>[/test].
func (r *replica) postSource(t *testing.T, path string, h http.Header, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.base+"/v1/sources/"+path, strings.NewReader(body))
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: status %d, body not JSON: %q", path, resp.StatusCode, b)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s: %d with Content-Type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, m, resp.Header
}

func events(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["events"].([]any)
	if !ok {
		t.Fatalf("no events in %v", m)
	}
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i] = e.(map[string]any)
	}
	return out
}

// TestSourcesEveryScheme: for every scheme, a good signature is 202 and
// the event reaches the user; a redelivery is 200 duplicate and is not
// delivered again; a tampered body, a wrong secret and (where there is a
// timestamp) a stale or future one are 401 and deliver nothing.
func TestSourcesEveryScheme(t *testing.T) {
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	r := serveWarm(t, env)
	sub := r.connect(t, "token="+subToken(t, "42"))
	now := time.Now()
	for i, sc := range srcSchemes() {
		t.Run(sc.name, func(t *testing.T) {
			body := sc.body(i)
			code, m, _ := r.postSource(t, sc.name, sc.sign(sc.secret, body, now, i), body)
			if code != http.StatusAccepted {
				t.Fatalf("good signature: %d %v", code, m)
			}
			// Stripe's second rule makes a channel event user 42 does not
			// subscribe to: the first event is the user's.
			evs := events(t, m)
			if len(evs) < 1 || evs[0]["id"] == "" || evs[0]["cursor"] == "" {
				t.Fatalf("answer %v", m)
			}
			f := sub.next(t)
			if f["type"] != "event" || f["event"] != sc.eventType || f["id"] != evs[0]["id"] || f["source"] != sc.name {
				t.Fatalf("frame %v, want %s %v from %s", f, sc.eventType, evs[0]["id"], sc.name)
			}
			// The provider retries: same delivery, a later signature.
			code, m, _ = r.postSource(t, sc.name, sc.sign(sc.secret, body, now.Add(time.Second), i), body)
			again := events(t, m)
			if code != http.StatusOK || len(again) != len(evs) {
				t.Fatalf("redelivery: %d %v", code, m)
			}
			for j := range again {
				if again[j]["duplicate"] != true || again[j]["id"] != evs[j]["id"] || again[j]["cursor"] != evs[j]["cursor"] {
					t.Errorf("redelivery event %d: %v, first %v", j, again[j], evs[j])
				}
			}
			tampered := strings.Replace(body, `"42"`, `"43"`, 1)
			if tampered == body {
				tampered = strings.Replace(body, `42`, `43`, 1)
			}
			for what, req := range map[string]struct {
				h    http.Header
				body string
			}{
				"tampered body": {sc.sign(sc.secret, body, now, i+100), tampered},
				"wrong secret":  {sc.sign(sc.secret+"x", body, now, i+100), body},
				"no signature":  {http.Header{"Content-Type": {"application/json"}}, body},
			} {
				if code, m, _ := r.postSource(t, sc.name, req.h, req.body); code != http.StatusUnauthorized || m["type"] != "https://hookwire.dev/problems/unauthorized" {
					t.Errorf("%s: %d %v", what, code, m)
				}
			}
			if sc.timestamped {
				for _, d := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
					if code, m, _ := r.postSource(t, sc.name, sc.sign(sc.secret, body, now.Add(d), i+200), body); code != http.StatusUnauthorized {
						t.Errorf("timestamp %s away: %d %v", d, code, m)
					}
				}
			}
		})
	}
	sub.quiet(t, 300*time.Millisecond)
}

// TestSourcesRules: one Stripe webhook fans out to the user and the
// account's channel; no match is 200 ignored; a rule failing on a payload
// is 200 ignored and counted; Slack's challenge, slash commands and
// interactivity (form bodies); the dry run; an unknown source; the body
// limit.
func TestSourcesRules(t *testing.T) {
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	r := serveWarm(t, env)
	user := r.connect(t, "token="+subToken(t, "42"))
	other := r.connect(t, "token="+subToken(t, "7", "accounts.*")+"&channels=accounts.cus_1")
	stripe := srcSchemes()[0]
	now := time.Now()

	body := stripe.body(1)
	code, m, _ := r.postSource(t, "stripe", stripe.sign(srcStripeOld, body, now, 0), body)
	if code != http.StatusAccepted || len(events(t, m)) != 2 {
		t.Fatalf("old secret during rotation: %d %v", code, m)
	}
	if f := user.next(t); f["event"] != "balance.updated" || fmt.Sprint(f["data"]) != "map[balance:1001]" {
		t.Errorf("user frame %v", f)
	}
	if f := other.next(t); f["event"] != "account.updated" || f["channel"] != "accounts.cus_1" {
		t.Errorf("channel frame %v", f)
	}

	for what, b := range map[string]string{
		"no match":    `{"id":"evt_x","type":"charge.refunded","data":{"object":{}}}`,
		"rule errors": `{"id":"evt_y","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`,
	} {
		code, m, _ := r.postSource(t, "stripe", stripe.sign(srcStripeNew, b, now, 0), b)
		if code != http.StatusOK || m["ignored"] != true || len(events(t, m)) != 0 {
			t.Errorf("%s: %d %v", what, code, m)
		}
	}
	slack := srcSchemes()[3]
	chal := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	if code, m, _ := r.postSource(t, "slack", slack.sign(srcSlack, chal, now, 0), chal); code != http.StatusOK || m["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("signed url_verification: %d %v", code, m)
	}
	if code, _, _ := r.postSource(t, "slack", http.Header{"Content-Type": {"application/json"}}, chal); code != http.StatusUnauthorized {
		t.Errorf("unsigned url_verification: %d", code)
	}
	// Slack's slash commands and interactivity post forms, signed over
	// the raw bytes like its events; the rules read their fields.
	form := func(body string) http.Header {
		h := slack.sign(srcSlack, body, now, 0)
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		return h
	}
	command := "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&channel_id=C2147483705&user_id=42&user_name=steve&command=%2Fbalance&text=eur+%26+usd&trigger_id=13345224609.738474920"
	if code, m, _ := r.postSource(t, "slack", form(command), command); code != http.StatusAccepted || len(events(t, m)) != 1 {
		t.Errorf("slash command: %d %v", code, m)
	} else if f := user.next(t); f["event"] != "balance.asked" || fmt.Sprint(f["data"]) != "map[text:eur & usd]" || f["source"] != "slack" {
		t.Errorf("slash command frame %v", f)
	}
	action := "payload=" + url.QueryEscape(`{"type":"block_actions","user":{"id":"42"},"actions":[{"action_id":"buy","value":"plan-pro"}]}`)
	if code, m, _ := r.postSource(t, "slack", form(action), action); code != http.StatusAccepted || len(events(t, m)) != 1 {
		t.Errorf("interactivity: %d %v", code, m)
	} else if f := user.next(t); f["event"] != "slack.action" || f["data"] != "plan-pro" {
		t.Errorf("interactivity frame %v", f)
	}
	if code, m, _ := r.postSource(t, "slack", form(command), strings.Replace(command, "eur", "usd", 1)); code != http.StatusUnauthorized {
		t.Errorf("tampered form: %d %v", code, m)
	}

	// The dry run: with a publisher key, nothing appended.
	dry := stripe.body(2)
	h := stripe.sign(srcStripeNew, dry, now, 0)
	if code, m, _ := r.postSource(t, "stripe/test", h, dry); code != http.StatusUnauthorized {
		t.Errorf("dry run without a key: %d %v", code, m)
	}
	h.Set("Authorization", "Bearer "+testAPIKey)
	code, m, _ = r.postSource(t, "stripe/test", h, dry)
	if code != http.StatusOK || m["verified"] != true || len(events(t, m)) != 2 || events(t, m)[0]["type"] != "balance.updated" {
		t.Fatalf("dry run: %d %v", code, m)
	}
	// and the CLI for it.
	cli := exec.Command(binary, "sources", "test", "stripe", "--body", writeTemp(t, dry), "--header", "Stripe-Signature: "+h.Get("Stripe-Signature"))
	cli.Env = replicaEnv("HOOKWIRE_URL="+r.base, "HOOKWIRE_API_KEY="+testAPIKey)
	out, err := cli.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"verified":true`) || !strings.Contains(string(out), `"type":"balance.updated"`) {
		t.Errorf("hookwire sources test: %v %s", err, out)
	}

	if code, m, _ := r.postSource(t, "nope", stripe.sign(srcStripeNew, dry, now, 0), dry); code != http.StatusNotFound {
		t.Errorf("unknown source: %d %v", code, m)
	}
	big := `{"id":"evt_big","type":"customer.updated","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	if code, m, _ := r.postSource(t, "stripe", stripe.sign(srcStripeNew, big, now, 0), big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("70 KiB body: %d %v", code, m)
	}
	metrics := r.get(t, "/metrics")
	for _, want := range []string{`hookwire_source_rule_errors_total{`, `rule="broken"`, `hookwire_source_ignored_total{`, `hookwire_source_rejected_total{`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	user.quiet(t, 300*time.Millisecond)
	other.quiet(t, 10*time.Millisecond)
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *replica) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSourcesBadFile: a file with an unknown scheme, a missing secret or
// a rule that does not compile refuses the start and says where.
func TestSourcesBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(strings.Replace(sourcesYAML, "scheme: github", "scheme: gitlab", 1),
		`users: '[body.data.object.metadata.user_id]'`, `users: '[body.data.object.metadata.user_id'`, 1)
	_, env := sourcesEnv(t, dir, bad)
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = replicaEnv(append(env, "STRIPE_OLD=")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("started with a bad sources file")
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("did not refuse to start")
	}
	for _, want := range []string{`source "stripe": verify.secret_env: STRIPE_OLD is not set`, `source "stripe": rule 1 ("balance"): users:`, `source "github": verify.scheme: unknown scheme "gitlab"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	out, err := exec.Command(binary, "sources", "check", filepath.Join(dir, "sources.yaml"), "--skip-secrets").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown scheme "gitlab"`) || strings.Contains(string(out), "is not set") {
		t.Errorf("sources check: %v %s", err, out)
	}
}

// TestSourcesReload: a changed file is picked up without a restart; a bad
// one keeps the rules in force and says why (in the replica's log).
func TestSourcesReload(t *testing.T) {
	dir := t.TempDir()
	path, env := sourcesEnv(t, dir, sourcesYAML)
	rewrite := func(yaml string) {
		t.Helper()
		writeAtomic(t, path, strings.ReplaceAll(yaml, "SHOPIFY_FILE", shopifyFile(dir)))
	}
	r := serveWarm(t, env)
	user := r.connect(t, "token="+subToken(t, "42"))
	stripe := srcSchemes()[0]
	post := func(n int) map[string]any {
		body := stripe.body(n)
		code, m, _ := r.postSource(t, "stripe", stripe.sign(srcStripeNew, body, time.Now(), 0), body)
		if code != http.StatusAccepted {
			t.Fatalf("%d %v", code, m)
		}
		return user.next(t)
	}
	rewrite(strings.Replace(sourcesYAML, `when: 'body.type == "customer.updated"'`, `when: 'body.type == "customer.updated" &&'`, 1))
	waitLog(t, r, "sources not reloaded", 15*time.Second)
	if f := post(10); f["event"] != "balance.updated" {
		t.Fatalf("after a bad reload: %v", f)
	}
	rewrite(strings.Replace(sourcesYAML, `type: '"balance.updated"'`, `type: '"balance.changed"'`, 1))
	waitLog(t, r, "sources reloaded", 15*time.Second)
	if f := post(11); f["event"] != "balance.changed" {
		t.Fatalf("after a good reload: %v", f)
	}
}

func waitLog(t *testing.T, r *replica, text string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(r.stderr.String(), text) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %q in the log within %s", text, within)
}

// TestSourcesTraces: the source request is the root span of each event's
// trace (its server span continues an incoming traceparent), and every
// event's send span is its child.
func TestSourcesTraces(t *testing.T) {
	recv := &otlpReceiver{}
	otlp := httptest.NewServer(recv)
	defer otlp.Close()
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	// A process: the OTLP exporter reads its OTEL_* settings from the
	// process environment, not from serve's getenv.
	r := startReplica(t, append(env,
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+otlp.URL,
		"OTEL_BSP_SCHEDULE_DELAY=50",
	))
	user := r.connect(t, "token="+subToken(t, "42"))
	stripe := srcSchemes()[0]
	const traceID = "5cf92f3577b34da6a3ce929d0e0e4737"
	const parentID = "10f067aa0ba902b8"
	body := stripe.body(77)
	h := stripe.sign(srcStripeNew, body, time.Now(), 0)
	h.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	if code, m, _ := r.postSource(t, "stripe", h, body); code != http.StatusAccepted || len(events(t, m)) != 2 {
		t.Fatalf("%d %v", code, m)
	}
	if f := user.next(t); !strings.Contains(fmt.Sprint(f["traceparent"]), traceID) {
		t.Errorf("frame traceparent %v does not continue trace %s", f["traceparent"], traceID)
	}
	var server *receivedSpan
	var sends []receivedSpan
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		spans := recv.trace(traceID)
		server, sends = nil, nil
		for i, s := range spans {
			switch s.Kind {
			case tracepb.Span_SPAN_KIND_SERVER:
				server = &spans[i]
			case tracepb.Span_SPAN_KIND_PRODUCER:
				sends = append(sends, s)
			}
		}
		if server != nil && len(sends) >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if server == nil || len(sends) != 2 {
		t.Fatalf("trace %s: server=%v, %d send spans", traceID, server != nil, len(sends))
	}
	if hex.EncodeToString(server.ParentSpanId) != parentID || !strings.Contains(server.Name, "/v1/sources/stripe") {
		t.Errorf("server span %q does not continue the incoming traceparent", server.Name)
	}
	for _, s := range sends {
		if !bytes.Equal(s.ParentSpanId, server.SpanId) {
			t.Errorf("send span %q is not a child of the source request", s.Name)
		}
	}
}

// dryVerified reports whether the dry run verifies a webhook: the
// signature check of the sources in force, appending nothing.
func (r *replica) dryVerified(t *testing.T, name string, h http.Header, body string) bool {
	t.Helper()
	h = h.Clone()
	h.Set("Authorization", "Bearer "+testAPIKey)
	code, m, _ := r.postSource(t, name+"/test", h, body)
	if code != http.StatusOK {
		t.Fatalf("dry run %s: %d %v", name, code, m)
	}
	return m["verified"] == true
}

// TestSourcesRotation: for every scheme, while the old and the new secret
// are both configured both verify; once the old one is removed from the
// file (the Shopify one from its secret file), hookwire reloads and the
// old one gets 401 while the new one still gets 202.
func TestSourcesRotation(t *testing.T) {
	dir := t.TempDir()
	path, env := sourcesEnv(t, dir, sourcesYAML)
	r := serveWarm(t, env)
	user := r.connect(t, "token="+subToken(t, "42"))
	post := func(t *testing.T, sc srcScheme, secret string, n int) (int, map[string]any) {
		t.Helper()
		body := sc.body(n)
		code, m, _ := r.postSource(t, sc.name, sc.sign(secret, body, time.Now(), n), body)
		return code, m
	}
	delivered := func(t *testing.T, sc srcScheme, what string, m map[string]any) {
		t.Helper()
		evs := events(t, m)
		if f := user.next(t); len(evs) == 0 || f["id"] != evs[0]["id"] || f["event"] != sc.eventType {
			t.Errorf("%s: frame %v, want %v", what, f, evs)
		}
	}
	for i, sc := range srcSchemes() {
		for j, secret := range []string{sc.old, sc.secret} {
			code, m := post(t, sc, secret, 300+10*i+j)
			if code != http.StatusAccepted {
				t.Fatalf("%s, both secrets configured, signed with secret %d: %d %v", sc.name, j+1, code, m)
			}
			delivered(t, sc, sc.name, m)
		}
	}

	writeAtomic(t, shopifyFile(dir), srcShopify+"\n")
	writeAtomic(t, path, strings.ReplaceAll(rotated.Replace(sourcesYAML), "SHOPIFY_FILE", shopifyFile(dir)))
	// The registry polls every 10 s: wait until no old secret verifies.
	deadline := time.Now().Add(40 * time.Second)
	for {
		var still []string
		for i, sc := range srcSchemes() {
			body := sc.body(400 + i)
			if r.dryVerified(t, sc.name, sc.sign(sc.old, body, time.Now(), 400+i), body) {
				still = append(still, sc.name)
			}
		}
		if len(still) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old secrets still verify %v after the rotation:\n%s", still, r.stderr.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.Contains(r.stderr.String(), "sources reloaded") {
		t.Error(`no "sources reloaded" in the log`)
	}
	for i, sc := range srcSchemes() {
		if code, m := post(t, sc, sc.old, 500+i); code != http.StatusUnauthorized || m["type"] != "https://hookwire.dev/problems/unauthorized" {
			t.Errorf("%s, old secret removed: %d %v, want 401", sc.name, code, m)
		}
		code, m := post(t, sc, sc.secret, 600+i)
		if code != http.StatusAccepted {
			t.Fatalf("%s, new secret after the rotation: %d %v", sc.name, code, m)
		}
		delivered(t, sc, sc.name+" after the rotation", m)
	}
	user.quiet(t, 300*time.Millisecond)
}

// TestSourcesRedeliveryOtherReplica: two replicas on one Redis; for every
// scheme, the provider's delivery posted to A is 202, its redelivery
// posted to B is 200 duplicate with the same ids and cursors, and each
// replica's subscriber receives the event exactly once.
func TestSourcesRedeliveryOtherReplica(t *testing.T) {
	rs := redistest.Start(t)
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	env = append(env, "HOOKWIRE_REDIS_URL="+rs.URL())
	a := serveWarm(t, env)
	b := serveWarm(t, env)
	subs := []*subscriber{a.connect(t, "token="+subToken(t, "42")), b.connect(t, "token="+subToken(t, "42"))}
	now := time.Now()
	want := map[string]bool{} // the event ids user 42 must get
	for i, sc := range srcSchemes() {
		body := sc.body(700 + i)
		code, m, _ := a.postSource(t, sc.name, sc.sign(sc.secret, body, now, 700+i), body)
		if code != http.StatusAccepted {
			t.Fatalf("%s on A: %d %v", sc.name, code, m)
		}
		first := events(t, m)
		want[fmt.Sprint(first[0]["id"])] = true
		// The provider retries (its timeout, say) and the balancer sends
		// the retry to B: a later signature over the same delivery.
		code, m, _ = b.postSource(t, sc.name, sc.sign(sc.secret, body, now.Add(2*time.Second), 700+i), body)
		again := events(t, m)
		if code != http.StatusOK || len(again) != len(first) {
			t.Fatalf("%s redelivered to B: %d %v, first %v", sc.name, code, m, first)
		}
		for j := range again {
			if again[j]["duplicate"] != true || again[j]["id"] != first[j]["id"] || again[j]["cursor"] != first[j]["cursor"] {
				t.Errorf("%s redelivered to B, event %d: %v, first %v", sc.name, j, again[j], first[j])
			}
		}
	}
	for k, s := range subs {
		got := map[string]int{}
		for range want {
			f := s.next(t)
			got[fmt.Sprint(f["id"])]++
		}
		// Anything more (a second copy) would arrive by now.
		s.quiet(t, 500*time.Millisecond)
		for id := range want {
			if got[id] != 1 {
				t.Errorf("subscriber on replica %c got event %s %d times, want once (frames by id: %v)", 'A'+k, id, got[id], got)
			}
		}
	}
}

// TestSourcesRateLimited: with HOOKWIRE_PUBLISH_RATE each source is one
// publisher: past its budget a webhook gets 429 with Retry-After and
// nothing is appended, another source is not affected, and the provider's
// retry after Retry-After is accepted (not a duplicate).
func TestSourcesRateLimited(t *testing.T) {
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	// 0.5 events/s, bursts of 1: a token comes back every 2 s.
	r := serveWarm(t, append(env, "HOOKWIRE_PUBLISH_RATE=0.5"))
	user := r.connect(t, "token="+subToken(t, "42"))
	scs := srcSchemes()
	gh, shop := scs[1], scs[2]
	post := func(sc srcScheme, n int) (int, map[string]any, http.Header) {
		body := sc.body(n)
		return r.postSource(t, sc.name, sc.sign(sc.secret, body, time.Now(), n), body)
	}
	if code, m, _ := post(gh, 1); code != http.StatusAccepted {
		t.Fatalf("first webhook: %d %v", code, m)
	}
	// At once (well within the 2 s a token takes to come back).
	code, m, h := post(gh, 2)
	if code != http.StatusTooManyRequests || m["type"] != "https://hookwire.dev/problems/rate-limited" {
		t.Fatalf("second webhook at once: %d %v, want 429", code, m)
	}
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 seconds", h.Get("Retry-After"))
	}
	if code, m, _ := post(shop, 1); code != http.StatusAccepted {
		t.Errorf("another source, its own budget: %d %v", code, m)
	}
	user.expect(t, map[string]any{"event": "repo.pushed"})
	user.expect(t, map[string]any{"event": "order.created"})
	time.Sleep(time.Duration(ra) * time.Second)
	code, m, _ = post(gh, 2)
	if evs := events(t, m); code != http.StatusAccepted || evs[0]["duplicate"] == true {
		t.Fatalf("the retry after Retry-After: %d %v, want 202", code, m)
	}
	user.expect(t, map[string]any{"event": "repo.pushed"})
	user.quiet(t, 300*time.Millisecond)
}

// TestSourcesBrokerDown: with Redis gone a verified webhook gets 503 with
// Retry-After (the provider retries) and is not appended; once Redis is
// back the provider's retry is 202, not a duplicate, and is delivered.
func TestSourcesBrokerDown(t *testing.T) {
	// With an append-only file, as in production: Redis comes back with
	// its stream, so the replica resumes instead of resetting.
	rs := redistest.Start(t, redistest.WithAppendOnly())
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	r := serveWarm(t, append(env, "HOOKWIRE_REDIS_URL="+rs.URL()))
	gh := srcSchemes()[1]
	body := gh.body(1)
	if code, m, _ := r.postSource(t, "github", gh.sign(gh.secret, body, time.Now(), 1), body); code != http.StatusAccepted {
		t.Fatalf("with Redis: %d %v", code, m)
	}
	rs.Kill()
	body = gh.body(2)
	code, m, h := r.postSource(t, "github", gh.sign(gh.secret, body, time.Now(), 2), body)
	if code != http.StatusServiceUnavailable || m["type"] != "https://hookwire.dev/problems/broker-unavailable" {
		t.Fatalf("Redis down: %d %v, want 503", code, m)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", h.Get("Retry-After"))
	}
	rs.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 within 30s of Redis's restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
	user := r.connect(t, "token="+subToken(t, "42"))
	code, m, _ = r.postSource(t, "github", gh.sign(gh.secret, body, time.Now(), 2), body)
	if evs := events(t, m); code != http.StatusAccepted || evs[0]["duplicate"] == true {
		t.Fatalf("the retry once Redis is back: %d %v, want 202", code, m)
	}
	user.expect(t, map[string]any{"event": "repo.pushed", "id": events(t, m)[0]["id"]})
}

// serveWarm is serveInProcess(t, env, args...).asReplica(t) once the
// replica's hub reads its stream. serve starts the hub's reader (hub.Run,
// which tails the stream from where it is when it starts) after it
// listens, so an event accepted in the replica's first moments can miss a
// socket already welcomed; in-process, where the test sees the address at
// once, the tests hit that window (2 of 12 CloudEvents runs under load).
// Until serve closes it, the tests wait it out: a throwaway subscriber
// gets a warm-up event addressed to nobody else.
func serveWarm(t *testing.T, env []string, args ...string) *replica {
	t.Helper()
	r := serveInProcess(t, env, args...).asReplica(t)
	s := r.connect(t, "token="+subToken(t, "hookwire-warmup"))
	defer s.ws.Close()
	deadline := time.Now().Add(30 * time.Second)
	for n := 1; time.Now().Before(deadline); n++ {
		code, m := r.post(t, testAPIKey, `{"type":"warmup","users":["hookwire-warmup"]}`)
		switch code {
		case http.StatusAccepted:
		case http.StatusTooManyRequests: // a test's HOOKWIRE_PUBLISH_RATE
			time.Sleep(time.Second)
			continue
		default:
			t.Fatalf("warm-up event: %d %v", code, m)
		}
		select {
		case f := <-s.frames:
			if f["type"] == "event" {
				if n > 1 {
					t.Logf("the replica delivered warm-up event %d, not the first", n)
				}
				return r
			}
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Fatal("the replica delivered no warm-up event within 30s")
	return nil
}
