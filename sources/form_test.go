package sources

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const slackFormRules = `
sources:
  - name: slack
    verify: {scheme: slack, secret_env: SLACK}
    rules:
      - name: command
        when: 'has(body.command) && body.command == "/balance"'
        type: '"balance.asked"'
        users: '[body.user_id]'
        data: '{"text": body.text}'
      - name: action
        when: 'has(body.payload) && body.payload.type == "block_actions"'
        type: '"slack.action"'
        users: '[body.payload.user.id]'
      - name: echo
        when: 'has(body.payload) && body.payload.type == "view_submission"'
        type: '"slack.view"'
        users: '[body.payload.user.id]'
  - name: github
    verify: {scheme: github, secret_env: GITHUB}
    rules:
      - type: '"repo.pushed"'
        users: '[body.payload.sender.login]'
`

// A real slash command (Slack's documentation), shortened.
const slashCommand = `token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&channel_id=C2147483705&channel_name=test` +
	`&user_id=U2147483697&user_name=Steve&command=%2Fbalance&text=eur+%26+usd&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678` +
	`&trigger_id=13345224609.738474920.8088930838d88f008e0&text=ignored+second+value`

// An interactivity request: one payload field of URL-encoded JSON.
func blockActions(userID string) string {
	p := `{"type":"block_actions","user":{"id":"` + userID + `","username":"steve"},"trigger_id":"123.456","actions":[{"action_id":"a1","value":"<b>&"}]}`
	return "payload=" + url.QueryEscape(p)
}

func formHeaders(h http.Header) http.Header {
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func TestFormBodies(t *testing.T) {
	set := mustParse(t, slackFormRules)
	slack := mustSource(t, set, "slack")
	ctx := context.Background()
	now := time.Now()

	t.Run("slash command", func(t *testing.T) {
		body := []byte(slashCommand)
		d, err := slack.Verify(ctx, formHeaders(slackHeaders(slackSecret, body, now)), body, now)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d.ID, "sha256:") {
			t.Errorf("delivery id %q, want a hash of the body (a slash command has no event_id)", d.ID)
		}
		evs, errs := slack.Events(ctx, d)
		if len(evs) != 1 || len(errs) != 0 {
			t.Fatalf("events %v, errors %v", evs, errs)
		}
		if ev := evs[0]; ev.Type != "balance.asked" || len(ev.Users) != 1 || ev.Users[0] != "U2147483697" || string(ev.Data) != `{"text":"eur & usd"}` {
			t.Errorf("event %+v data %s", ev, ev.Data)
		}
	})

	t.Run("interactivity payload", func(t *testing.T) {
		body := []byte(blockActions("U42"))
		d, err := slack.Verify(ctx, formHeaders(slackHeaders(slackSecret, body, now)), body, now)
		if err != nil {
			t.Fatal(err)
		}
		evs, errs := slack.Events(ctx, d)
		if len(evs) != 1 || len(errs) != 0 {
			t.Fatalf("events %v, errors %v", evs, errs)
		}
		ev := evs[0]
		if ev.Type != "slack.action" || ev.Users[0] != "U42" {
			t.Errorf("event %+v", ev)
		}
		// The default data is the form as JSON, the payload as its object
		// (not a string), HTML characters as they were.
		var data map[string]map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("data %s: %v", ev.Data, err)
		}
		if data["payload"]["type"] != "block_actions" || !strings.Contains(string(ev.Data), `"value":"<b>&"`) {
			t.Errorf("data %s", ev.Data)
		}
		if err := ev.Validate(); err != nil {
			t.Error(err)
		}
	})

	t.Run("payload that is not a JSON object stays a string", func(t *testing.T) {
		for _, p := range []string{"not json", `{"cut":`, `[1,2]`, `"s"`} {
			body := []byte("payload=" + url.QueryEscape(p) + "&user_id=U1&command=%2Fbalance&text=x")
			d, err := slack.Verify(ctx, formHeaders(slackHeaders(slackSecret, body, now)), body, now)
			if err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			if got := d.parsed.(map[string]any)["payload"]; got != p {
				t.Errorf("payload %q: body.payload = %#v, want the string", p, got)
			}
			if evs, errs := slack.Events(ctx, d); len(evs) != 1 || evs[0].Type != "balance.asked" || len(errs) != 2 {
				// The payload rules fail on a string payload (no .type) and are skipped.
				t.Errorf("payload %q: events %v, errors %v", p, evs, errs)
			}
		}
	})

	t.Run("signature over the raw bytes", func(t *testing.T) {
		body := []byte(slashCommand)
		h := formHeaders(slackHeaders(slackSecret, body, now))
		// The same fields, encoded differently, are other bytes: 401.
		other := []byte(strings.Replace(slashCommand, "eur+%26+usd", "eur%20%26%20usd", 1))
		if _, err := slack.Verify(ctx, h, other, now); !errors.Is(err, ErrUnverified) {
			t.Errorf("re-encoded form: %v, want ErrUnverified", err)
		}
	})

	t.Run("any scheme, by Content-Type", func(t *testing.T) {
		gh := mustSource(t, set, "github")
		body := []byte("payload=" + url.QueryEscape(`{"ref":"refs/heads/main","sender":{"login":"octocat"}}`))
		d, err := gh.Verify(ctx, formHeaders(githubHeaders(githubSecret, body, now)), body, now)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
			t.Errorf("delivery id %q", d.ID)
		}
		if evs, errs := gh.Events(ctx, d); len(evs) != 1 || evs[0].Users[0] != "octocat" || len(errs) != 0 {
			t.Errorf("events %v, errors %v", evs, errs)
		}
		// Without the form Content-Type the same bytes are not JSON: 400.
		if _, err := gh.Verify(ctx, githubHeaders(githubSecret, body, now), body, now); !errors.Is(err, ErrBody) {
			t.Errorf("form bytes as JSON: %v, want ErrBody", err)
		}
	})

	t.Run("url_verification is JSON only", func(t *testing.T) {
		body := []byte("type=url_verification&challenge=abc")
		d, err := slack.Verify(ctx, formHeaders(slackHeaders(slackSecret, body, now)), body, now)
		if err != nil || d.Challenge != "" {
			t.Errorf("form url_verification: %+v %v, want no challenge", d, err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		body := []byte(blockActions("U7"))
		res := slack.DryRun(formHeaders(slackHeaders(slackSecret, body, now)), body, now)
		if !res.Verified || len(res.Events) != 1 || res.Events[0].Users[0] != "U7" {
			t.Errorf("dry run %+v", res)
		}
	})
}

func TestParseForm(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string // data, when ok
		wantErr string
	}{
		{name: "empty", body: "", want: `{}`},
		{name: "first value", body: "a=1&a=2&b=", want: `{"a":"1","b":""}`},
		{name: "plus and percent", body: "q=a+b%2Bc", want: `{"q":"a b+c"}`},
		{name: "payload object", body: "payload=" + url.QueryEscape(` {"n": 12345678901234567890, "s":"x"} `), want: `{"payload":{"n":12345678901234567890,"s":"x"}}`},
		{name: "key without value", body: "flag", want: `{"flag":""}`},
		{name: "bad escape", body: "a=%zz", wantErr: "percent-encoding"},
		{name: "semicolon", body: "a=1;b=2", wantErr: "';'"},
		{name: "not UTF-8 decoded", body: "a=%ff", wantErr: "UTF-8"},
		{name: "not UTF-8 raw", body: "a=\xff", wantErr: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, data, err := parseForm([]byte(tt.body))
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseForm(%q) = %s, %v; want an error saying %q", tt.body, data, err, tt.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), "zz") {
					t.Errorf("the error quotes the body: %v", err)
				}
			case err != nil || string(data) != tt.want:
				t.Errorf("parseForm(%q) = %s, %v; want %s", tt.body, data, err, tt.want)
			}
		})
	}
}

func TestIsForm(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/x-www-form-urlencoded":                true,
		"Application/X-WWW-Form-Urlencoded; charset=utf-8": true,
		"application/json":                                 false,
		"multipart/form-data; boundary=x":                  false,
		"":                                                 false,
		"application/x-www-form-urlencoded; =bad":          false,
	} {
		if got := isForm(http.Header{"Content-Type": {ct}}); got != want {
			t.Errorf("isForm(%q) = %v, want %v", ct, got, want)
		}
	}
}
