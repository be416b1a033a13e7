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
)

// The secrets of the sources tests, as a provider's dashboard shows them.
const (
	srcStripeNew = "whsec_e2eStripeNew0123456789"
	srcStripeOld = "whsec_e2eStripeOld0123456789"
	srcGitHub    = "e2e github secret"
	srcShopify   = "shpss_e2e0123456789"
	srcSlack     = "e2e8f742231b10e8888abcd99yyy"
	srcHMAC      = "e2e hmac secret"
)

var (
	srcSW    = auth.NewWebhookSecret()
	srcSWKey = ed25519.NewKeyFromSeed([]byte("e2e-seed-0123456789abcdef0123456"))
	srcSWPub = "whpk_" + base64.StdEncoding.EncodeToString(srcSWKey.Public().(ed25519.PublicKey))
)

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
    verify: {scheme: github, secret_env: GITHUB_SECRET}
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
    verify: {scheme: slack, secret_env: SLACK_SECRET}
    rules:
      - when: 'body.type == "event_callback"'
        type: '"slack." + body.event.type'
        users: '[body.event.user]'
  - name: sw
    verify: {scheme: standard-webhooks, secret_env: [SW_SECRET, SW_PUBLIC]}
    rules:
      - type: 'body.type'
        users: '[body.user]'
  - name: custom
    verify: {scheme: hmac, secret_env: HMAC_SECRET, header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512=", id_header: X-Delivery-Id}
    rules:
      - type: 'body.kind'
        users: '[body.user]'
`

// srcScheme is one scheme's test: a body addressed to user 42 and how
// its provider signs it.
type srcScheme struct {
	name        string
	secret      string
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
		{name: "stripe", secret: srcStripeNew, timestamped: true, eventType: "balance.updated",
			body: func(n int) string {
				return fmt.Sprintf(`{"id":"evt_e2e_%d","object":"event","type":"customer.updated","data":{"object":{"id":"cus_1","object":"customer","balance":%d,"metadata":{"user_id":"42"}}}}`, n, 1000+n)
			},
			sign: func(secret, body string, ts time.Time, _ int) http.Header {
				sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(body), Secret: secret, Timestamp: ts})
				return http.Header{"Stripe-Signature": {sp.Header}, "Content-Type": {"application/json; charset=utf-8"}}
			}},
		{name: "github", secret: srcGitHub, eventType: "repo.pushed",
			body: func(n int) string {
				return fmt.Sprintf(`{"ref":"refs/heads/main","after":"%d","sender":{"login":"42"}}`, n)
			},
			sign: func(secret, body string, _ time.Time, n int) http.Header {
				return http.Header{"X-Hub-Signature-256": {"sha256=" + hexMAC(secret, body)}, "X-Github-Event": {"push"},
					"X-Github-Delivery": {fmt.Sprintf("gh-delivery-%d", n)}, "Content-Type": {"application/json"}}
			}},
		{name: "shopify", secret: srcShopify, eventType: "order.created",
			body: func(n int) string { return fmt.Sprintf(`{"id":%d,"customer":{"id":42}}`, 820982911946154508+n) },
			sign: func(secret, body string, _ time.Time, n int) http.Header {
				m := hmac.New(sha256.New, []byte(secret))
				m.Write([]byte(body))
				return http.Header{"X-Shopify-Hmac-Sha256": {base64.StdEncoding.EncodeToString(m.Sum(nil))},
					"X-Shopify-Webhook-Id": {fmt.Sprintf("b54557e4-%d", n)}, "X-Shopify-Topic": {"orders/create"}, "Content-Type": {"application/json"}}
			}},
		{name: "slack", secret: srcSlack, timestamped: true, eventType: "slack.message",
			body: func(n int) string {
				return fmt.Sprintf(`{"type":"event_callback","event_id":"Ev%d","event":{"type":"message","user":"42","text":"hi"}}`, n)
			},
			sign: func(secret, body string, ts time.Time, _ int) http.Header {
				t := strconv.FormatInt(ts.Unix(), 10)
				return http.Header{"X-Slack-Request-Timestamp": {t}, "X-Slack-Signature": {"v0=" + hexMAC(secret, "v0:"+t+":"+body)}, "Content-Type": {"application/json"}}
			}},
		{name: "sw", secret: srcSW, timestamped: true, eventType: "invoice.sent",
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
		{name: "custom", secret: srcHMAC, eventType: "thing.done",
			body: func(n int) string { return fmt.Sprintf(`{"kind":"thing.done","user":"42","n":%d}`, n) },
			sign: func(secret, body string, _ time.Time, n int) http.Header {
				m := hmac.New(sha512.New, []byte(secret))
				m.Write([]byte(body))
				return http.Header{"X-Signature": {"sha512=" + base64.StdEncoding.EncodeToString(m.Sum(nil))}, "X-Delivery-Id": {fmt.Sprintf("d-%d", n)}, "Content-Type": {"application/json"}}
			}},
	}
}

// sourcesEnv writes the sources file (and the Shopify secret file) into
// dir and returns the environment of a replica serving it.
func sourcesEnv(t *testing.T, dir, yaml string) (string, []string) {
	t.Helper()
	shop := filepath.Join(dir, "shopify.secret")
	writeAtomic(t, shop, "# the app's client secret\n"+srcShopify+"\n")
	path := filepath.Join(dir, "sources.yaml")
	writeAtomic(t, path, strings.ReplaceAll(yaml, "SHOPIFY_FILE", shop))
	return path, []string{
		"HOOKWIRE_API_KEYS=" + testAPIKey,
		"HOOKWIRE_JWT_SECRET=" + testSecret,
		"HOOKWIRE_SOURCES_FILE=" + path,
		"STRIPE_NEW=" + srcStripeNew,
		"STRIPE_OLD=" + srcStripeOld,
		"GITHUB_SECRET=" + srcGitHub,
		"SLACK_SECRET=" + srcSlack,
		"SW_SECRET=" + srcSW,
		"SW_PUBLIC=" + srcSWPub,
		"HMAC_SECRET=" + srcHMAC,
	}
}

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
	r := startReplica(t, env)
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
// account's channel; rotation; no match is 200 ignored; a rule failing on
// a payload is 200 ignored and counted; Slack's challenge; the dry run;
// an unknown source; the body limit.
func TestSourcesRules(t *testing.T) {
	_, env := sourcesEnv(t, t.TempDir(), sourcesYAML)
	r := startReplica(t, env)
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
// one keeps the rules in force and says why.
func TestSourcesReload(t *testing.T) {
	dir := t.TempDir()
	path, env := sourcesEnv(t, dir, sourcesYAML)
	rewrite := func(yaml string) {
		t.Helper()
		writeAtomic(t, path, strings.ReplaceAll(yaml, "SHOPIFY_FILE", filepath.Join(dir, "shopify.secret")))
	}
	r := startReplica(t, env)
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
