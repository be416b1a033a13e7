package sources

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

const stripeRules = `
sources:
  - name: stripe
    verify:
      scheme: stripe
      secret_env: STRIPE
    rules:
      - name: balance
        when: 'body.type == "customer.updated"'
        type: '"balance.updated"'
        users: '[body.data.object.metadata.user_id]'
        data: '{"balance": body.data.object.balance, "currency": body.data.object.currency}'
      - when: 'body.type == "customer.updated"'
        type: '"account.changed"'
        channel: '"accounts." + body.data.object.id'
      - name: broken
        when: 'body.type.startsWith("customer.")'
        type: '"never"'
        users: '[body.data.object.missing.user_id]'
      - name: other
        when: 'body.type == "invoice.paid"'
        type: '"invoice.paid"'
        users: 'body.data.object.metadata.user_id'
        id: 'body.data.object.id'
`

// A real Stripe customer.updated payload, shortened.
const customerUpdated = `{
  "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
  "object": "event",
  "api_version": "2025-03-31.basil",
  "created": 1686089970,
  "data": {
    "object": {
      "id": "cus_9s6XKzkNRiz8i3",
      "object": "customer",
      "balance": 2500,
      "currency": "eur",
      "email": "jenny.rosen@example.com",
      "metadata": {"user_id": "42"}
    },
    "previous_attributes": {"balance": 1000}
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": "req_4Tw0BTZ3HmUWzj", "idempotency_key": null},
  "type": "customer.updated"
}`

func TestRulesFanOut(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	set, err := Parse([]byte(stripeRules), Options{Getenv: testEnv, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	src := mustSource(t, set, "stripe")
	now := time.Now()
	body := []byte(customerUpdated)
	d, err := src.Verify(context.Background(), stripeHeaders(stripeSecret, body, now), body, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "evt_1NG8Du2eZvKYlo2CUI79vXWy" {
		t.Errorf("delivery id %q", d.ID)
	}
	evs, errs := src.Events(context.Background(), d)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: %v", len(evs), errs)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `rule 3 ("broken")`) || !strings.Contains(errs[0].Error(), "users") {
		t.Errorf("errors %v, want rule 3's users", errs)
	}
	b := evs[0]
	if b.Type != "balance.updated" || len(b.Users) != 1 || b.Users[0] != "42" || b.Channel != "" {
		t.Errorf("balance event %+v", b)
	}
	var data map[string]any
	if err := json.Unmarshal(b.Data, &data); err != nil || string(b.Data) != `{"balance":2500,"currency":"eur"}` {
		t.Errorf("data %s (%v)", b.Data, err)
	}
	a := evs[1]
	if a.Type != "account.changed" || a.Channel != "accounts.cus_9s6XKzkNRiz8i3" || len(a.Users) != 0 {
		t.Errorf("channel event %+v", a)
	}
	if string(a.Data) != string(body) {
		t.Errorf("default data is not the body byte for byte")
	}
	if a.ID == b.ID {
		t.Error("two rules made one id")
	}
	if b.ID != EventID("stripe", "balance", d.ID) || a.ID != EventID("stripe", "#2", d.ID) {
		t.Errorf("ids %s %s", b.ID, a.ID)
	}
	// A redelivery makes the same ids: the stream dedupes them.
	d2, _ := src.Verify(context.Background(), stripeHeaders(stripeSecret, body, now.Add(time.Minute)), body, now.Add(time.Minute))
	evs2, _ := src.Events(context.Background(), d2)
	if len(evs2) != 2 || evs2[0].ID != b.ID || evs2[1].ID != a.ID {
		t.Errorf("redelivery ids differ")
	}

	// No rule matches: no events, counted as ignored.
	other := []byte(`{"id":"evt_2","type":"charge.refunded","data":{"object":{}}}`)
	d3, err := src.Verify(context.Background(), stripeHeaders(stripeSecret, other, now), other, now)
	if err != nil {
		t.Fatal(err)
	}
	if evs, errs := src.Events(context.Background(), d3); len(evs) != 0 || len(errs) != 0 {
		t.Errorf("no match: %v %v", evs, errs)
	}
	// users as one string, id from the body.
	inv := []byte(`{"id":"evt_3","type":"invoice.paid","data":{"object":{"id":"in_1","metadata":{"user_id":"7"}}}}`)
	d4, _ := src.Verify(context.Background(), stripeHeaders(stripeSecret, inv, now), inv, now)
	evs4, errs4 := src.Events(context.Background(), d4)
	if len(evs4) != 1 || evs4[0].Users[0] != "7" || evs4[0].ID != EventID("stripe", "other", "in_1") || len(errs4) != 0 {
		t.Errorf("invoice: %+v %v", evs4, errs4)
	}
	_, _ = src.Verify(context.Background(), stripeHeaders("whsec_wrong", inv, now), inv, now)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				key := m.Name
				if r, ok := dp.Attributes.Value("reason"); ok {
					key += "/" + r.AsString()
				}
				if r, ok := dp.Attributes.Value("rule"); ok {
					key += "/" + r.AsString()
				}
				got[key] += dp.Value
			}
		}
	}
	want := map[string]int64{
		"hookwire.source.webhooks":               5,
		"hookwire.source.rejected/bad_signature": 1,
		"hookwire.source.events":                 5,
		"hookwire.source.ignored":                1,
		"hookwire.source.rule_errors/broken":     2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestRuleRuntimeErrors(t *testing.T) {
	set := mustParse(t, `
sources:
  - name: s
    verify: {scheme: github, secret_env: GITHUB}
    rules:
      - {name: nonbool, when: 'body.x', type: '"t"', users: '["u"]'}
      - {name: nonstring, type: 'body.x', users: '["u"]'}
      - {name: badusers, type: '"t"', users: '[body.x]'}
      - {name: badchannel, type: '"t"', channel: '"has space"'}
      - {name: emptytype, type: '""', users: '["u"]'}
      - {name: costly, type: '"t"', users: '["u"]', data: 'body.list.map(a, body.list.map(b, body.list.map(c, a + b + c)))'}
      - {name: divzero, type: '"t"', users: '["u"]', data: '1 / body.zero'}
      - {name: optional, type: '"t"', users: '[body.?missing.user.orValue("anon")]', channel: 'body.?room.orValue("")'}
      - {name: nochannel, type: '"t"', channel: 'body.?room.orValue("")'}
`)
	src := mustSource(t, set, "s")
	list := make([]int, 300)
	bodyv, _ := json.Marshal(map[string]any{"x": 1, "zero": 0, "list": list})
	d, err := src.Verify(context.Background(), githubHeaders(githubSecret, bodyv, time.Now()), bodyv, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := src.Events(context.Background(), d)
	if len(evs) != 1 || evs[0].Users[0] != "anon" || evs[0].Channel != "" {
		t.Errorf("events %+v", evs)
	}
	if len(errs) != 8 {
		t.Fatalf("%d errors, want 8: %v", len(errs), errs)
	}
	for i, want := range []string{"when: is a int", "type: is a int", "users[0]", "channel", "type", "cost", "division by zero", "at least one of users"} {
		if !strings.Contains(errs[i].Error(), want) {
			t.Errorf("error %d %q does not say %q", i, errs[i], want)
		}
	}
}

func TestDryRun(t *testing.T) {
	set := mustParse(t, stripeRules)
	src := mustSource(t, set, "stripe")
	body := []byte(customerUpdated)
	now := time.Now()
	res := src.DryRun(stripeHeaders(stripeSecret, body, now), body, now)
	if !res.Verified || len(res.Events) != 2 || len(res.Errors) != 1 {
		t.Fatalf("%+v", res)
	}
	if res.Events[0].Users[0] != "42" || res.Events[1].Channel != "accounts.cus_9s6XKzkNRiz8i3" {
		t.Errorf("%+v", res.Events)
	}
	res = src.DryRun(nil, body, now)
	if res.Verified || len(res.Events) != 2 || !strings.HasPrefix(res.Errors[0], "signature:") {
		t.Fatalf("unsigned: %+v", res)
	}
	res = src.DryRun(nil, []byte("nope"), now)
	if res.Verified || len(res.Events) != 0 || len(res.Errors) != 2 {
		t.Fatalf("not JSON: %+v", res)
	}
}

func TestHeadersAndSource(t *testing.T) {
	set := mustParse(t, `
sources:
  - name: gh
    verify: {scheme: github, secret_env: GITHUB}
    rules:
      - when: 'headers["x-github-event"] == "push"'
        type: 'source + "." + headers["x-github-event"]'
        channel: '"repo." + body.repository.name'
        data: '{"ref": body.ref, "big": body.big, "n": 1.5, "ok": true, "none": null, "list": [1, "a"]}'
`)
	src := mustSource(t, set, "gh")
	body := []byte(`{"ref":"refs/heads/main","repository":{"name":"hookwire"},"big":9007199254740993}`)
	d, err := src.Verify(context.Background(), githubHeaders(githubSecret, body, time.Now()), body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := src.Events(context.Background(), d)
	if len(evs) != 1 || len(errs) != 0 {
		t.Fatalf("%v %v", evs, errs)
	}
	if evs[0].Type != "gh.push" || evs[0].Channel != "repo.hookwire" {
		t.Errorf("%+v", evs[0])
	}
	if got := string(evs[0].Data); got != `{"big":9007199254740993,"list":[1,"a"],"n":1.5,"none":null,"ok":true,"ref":"refs/heads/main"}` {
		t.Errorf("data %s", got)
	}
}
