package sources

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"empty", ``, []string{"empty"}},
		{"not yaml", "sources: [", []string{"YAML"}},
		{"unknown field", "sources:\n  - name: a\n    verfy: {}\n", []string{"unknown field", "verfy"}},
		{"no sources", "sources: []\n", []string{"no source"}},
		{"bad name", `sources: [{name: "A b", verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{`source "A b"`, "name must match"}},
		{"twice", `sources:
  - {name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}
  - {name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}`, []string{"used twice"}},
		{"unknown scheme", `sources: [{name: a, verify: {scheme: twilio, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{`source "a"`, "verify.scheme", "twilio"}},
		{"missing secret", `sources: [{name: a, verify: {scheme: github, secret_env: NOPE}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{`source "a"`, "secret_env", "NOPE is not set"}},
		{"no secret", `sources: [{name: a, verify: {scheme: github}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"secret_env or secret_file is required"}},
		{"missing secret file", `sources: [{name: a, verify: {scheme: github, secret_file: /nonexistent/x}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"secret_file", "no such file"}},
		{"stripe secret", `sources: [{name: a, verify: {scheme: stripe, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"secret 1", "whsec_"}},
		{"sw secret", `sources: [{name: a, verify: {scheme: standard-webhooks, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"secret 1", "whpk_"}},
		{"tolerance untimed", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB, tolerance: 1m}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"tolerance", "no timestamp"}},
		{"tolerance bad", `sources: [{name: a, verify: {scheme: stripe, secret_env: STRIPE, tolerance: soon}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"tolerance", "soon"}},
		{"hmac setting elsewhere", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB, header: X-Sig}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"verify.header", "only the hmac"}},
		{"hmac no header", `sources: [{name: a, verify: {scheme: hmac, secret_env: HMAC}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"verify.header is required"}},
		{"hmac algorithm", `sources: [{name: a, verify: {scheme: hmac, secret_env: HMAC, header: X-S, algorithm: md5}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"verify.algorithm", "md5"}},
		{"hmac encoding", `sources: [{name: a, verify: {scheme: hmac, secret_env: HMAC, header: X-S, encoding: base32}, rules: [{type: '"t"', users: '["u"]'}]}]`, []string{"verify.encoding"}},
		{"no rules", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}}]`, []string{"at least one rule"}},
		{"no type", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{users: '["u"]'}]}]`, []string{`source "a": rule 1: type: is required`}},
		{"no address", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"'}]}]`, []string{"rule 1", "users"}},
		{"syntax", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{name: r, type: '"t"', users: '["u"]', when: 'body.type =='}]}]`, []string{`source "a": rule 1 ("r"): when:`, "Syntax error"}},
		{"when type", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]', when: '"yes"'}]}]`, []string{"when: must be a bool, not string"}},
		{"type type", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '1', users: '["u"]'}]}]`, []string{"type: must be a string, not int"}},
		{"users type", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"', users: '[1]'}]}]`, []string{"users: must be a list of strings, not list(int)"}},
		{"undeclared", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: 'request.path', users: '["u"]'}]}]`, []string{"undeclared reference", "request"}},
		{"rule name twice", `sources: [{name: a, verify: {scheme: github, secret_env: GITHUB}, rules: [{name: r, type: '"t"', users: '["u"]'}, {name: r, type: '"t"', users: '["u"]'}]}]`, []string{`rule 2 ("r")`, "used twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), Options{Getenv: testEnv})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, secret := range []string{githubSecret, stripeSecret, hmacSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse([]byte(`
sources:
  - {name: a, verify: {scheme: nope, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]'}]}
  - {name: b, verify: {scheme: github, secret_env: GITHUB}, rules: [{type: '"t"', users: '["u"]', channel: '1'}]}
`), Options{Getenv: testEnv})
	if err == nil || !strings.Contains(err.Error(), `source "a"`) || !strings.Contains(err.Error(), `source "b": rule 1: channel`) {
		t.Fatalf("%v", err)
	}
}

func TestJSONFileAndSecretFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("# rotating\nold-secret\n\n"+githubSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := `{"sources":[{"name":"gh","verify":{"scheme":"github","secret_file":"` + secret + `"},"rules":[{"type":"\"t\"","users":"[\"u\"]"}]}]}`
	set, err := Parse([]byte(file), Options{Getenv: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	src := mustSource(t, set, "gh")
	for _, s := range []string{"old-secret", githubSecret} {
		if _, err := src.Verify(context.Background(), githubHeaders(s, testBody, time.Now()), testBody, time.Now()); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := Parse([]byte(file), Options{SkipSecrets: true, Getenv: env(nil)}); err != nil {
		t.Errorf("SkipSecrets: %v", err)
	}
}

// syncReports collects Watch's reports.
type syncReports struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func (r *syncReports) report(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.ch <- err
}

func (r *syncReports) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no reload report")
		return nil
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sources.yaml")
	secret := filepath.Join(dir, "secret")
	write := func(p, s string) {
		t.Helper()
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	file := func(typ string) string {
		return "sources:\n  - name: gh\n    verify: {scheme: github, secret_file: " + secret + "}\n    rules: [{type: '\"" + typ + "\"', users: '[\"u\"]'}]\n"
	}
	write(secret, "s1\n")
	write(path, file("one"))
	set, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(set, Options{})
	rep := &syncReports{ch: make(chan error, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); reg.Watch(ctx, path, 20*time.Millisecond, rep.report) }()
	defer func() { cancel(); wg.Wait() }()

	typeOf := func() string {
		src, ok := reg.Lookup("gh")
		if !ok {
			t.Fatal("no source gh")
		}
		h := githubHeaders("s1", testBody, time.Now())
		d, err := src.Verify(context.Background(), h, testBody, time.Now())
		if err != nil {
			return "unverified"
		}
		evs, _ := src.Events(context.Background(), d)
		return evs[0].Type
	}
	if typeOf() != "one" {
		t.Fatal("initial set")
	}
	write(path, file("two"))
	if err := rep.next(t); err != nil {
		t.Fatal(err)
	}
	if typeOf() != "two" {
		t.Fatal("not reloaded")
	}
	// A bad file keeps the old sources, and says why once.
	write(path, strings.Replace(file("three"), "users:", "users: '[1]', x:", 1))
	if err := rep.next(t); err == nil || !strings.Contains(err.Error(), "keeping the current ones") {
		t.Fatalf("bad file: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if typeOf() != "two" {
		t.Fatal("bad file replaced the sources")
	}
	rep.mu.Lock()
	n := len(rep.errs)
	rep.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d reports, want 2 (an unchanged bad file is reported once)", n)
	}
	// A rotated secret file is a change too.
	write(path, file("two"))
	write(secret, "s2\n")
	if err := rep.next(t); err != nil {
		t.Fatal(err)
	}
	if got := typeOf(); got != "unverified" {
		t.Fatalf("old secret still accepted after rotation: %s", got)
	}
}
