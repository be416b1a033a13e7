package sources

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"go.opentelemetry.io/otel/metric"

	"github.com/hookwire/hookwire/bridge"
)

// Options configure Load and Parse. Zero values mean the defaults.
type Options struct {
	// Getenv reads secret_env variables; nil means os.Getenv.
	Getenv func(string) string
	// SkipSecrets checks the file without reading any secret, for an
	// offline check where the secrets are not at hand. A Set loaded so
	// verifies nothing: every webhook is rejected.
	SkipSecrets bool
	// MeterProvider counts webhooks per source; nil means none.
	MeterProvider metric.MeterProvider
	// Logger receives a warning for each rule that fails on a payload;
	// nil discards.
	Logger *slog.Logger
}

// A Set is the sources of one file, validated and compiled. It is
// immutable and safe for concurrent use.
type Set struct {
	byName map[string]*Source
	names  []string
	digest [sha256.Size]byte
}

// Lookup returns the source served at /v1/sources/<name>.
func (s *Set) Lookup(name string) (*Source, bool) {
	if s == nil {
		return nil, false
	}
	src, ok := s.byName[name]
	return src, ok
}

// Names returns the sources' names in file order.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.names)
}

// Len returns the number of sources.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// A Source is one configured webhook sender: its verification and its
// rules. It is immutable and safe for concurrent use.
type Source struct {
	name  string
	vf    *verifier
	rules []*rule
	tel   *telemetry
	log   *slog.Logger
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Scheme returns the source's verification scheme.
func (s *Source) Scheme() string { return s.vf.scheme }

// rule is one compiled rule.
type rule struct {
	key   string // in the idempotency key and metrics: the name, else "#<n>"
	label string // in messages: `rule 2 ("balance")`
	when  *expr  // nil: always
	typ   *expr
	users *expr // nil: none
	chn   *expr // nil: none
	data  *expr // nil: the whole body
	id    *expr // nil: the delivery id
}

// Load reads, validates and compiles the sources file at path. Its error
// names the source, the rule and the field at fault; every problem of the
// file is reported, not only the first.
func Load(path string, opts Options) (*Set, error) {
	data, err := readFile(path, maxFileSize)
	if err != nil {
		return nil, fmt.Errorf("sources file: %w", err)
	}
	set, err := Parse(data, opts)
	if err != nil {
		return nil, fmt.Errorf("sources file %s: %w", path, err)
	}
	return set, nil
}

// Parse is Load for the content of a sources file.
func Parse(data []byte, opts Options) (*Set, error) {
	if opts.Getenv == nil {
		opts.Getenv = defaultGetenv
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fc, err := parseFile(data)
	if err != nil {
		return nil, err
	}
	env, err := ruleEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	tel := newTelemetry(opts.MeterProvider)
	sec := secretSource{getenv: opts.Getenv, skip: opts.SkipSecrets}
	set := &Set{byName: map[string]*Source{}}
	digest := sha256.New()
	digest.Write(data)
	var errs []error
	if len(fc.Sources) == 0 {
		errs = append(errs, errors.New("sources: no source defined"))
	}
	if len(fc.Sources) > maxSources {
		return nil, fmt.Errorf("sources: more than %d sources", maxSources)
	}
	for i, sc := range fc.Sources {
		where := fmt.Sprintf("source %d", i+1)
		if sc.Name != "" {
			where = fmt.Sprintf("source %q", sc.Name)
		}
		fail := func(err error) { errs = append(errs, fmt.Errorf("%s: %w", where, err)) }
		switch {
		case sc.Name == "":
			fail(errors.New("name is required"))
		case !nameRE.MatchString(sc.Name):
			fail(errors.New("name must match [a-z0-9-]{1,64}"))
		case set.byName[sc.Name] != nil:
			fail(errors.New("name is used twice"))
		}
		secrets, err := sec.secrets(sc.Verify)
		if err != nil {
			fail(err)
		}
		for _, s := range secrets {
			digest.Write([]byte{0})
			digest.Write([]byte(s))
		}
		vf, err := newVerifier(sc.Verify, secrets, sec.skip || err != nil)
		if err != nil {
			fail(err)
		}
		src := &Source{name: sc.Name, vf: vf, tel: tel, log: log}
		if len(sc.Rules) == 0 {
			fail(errors.New("rules: at least one rule is required"))
		}
		if len(sc.Rules) > maxRules {
			fail(fmt.Errorf("rules: more than %d rules", maxRules))
			continue
		}
		names := map[string]bool{}
		for j, rc := range sc.Rules {
			r, err := compileRule(env, j, rc)
			if err == nil && rc.Name != "" {
				if names[rc.Name] {
					err = errors.New("name is used twice")
				}
				names[rc.Name] = true
			}
			if err != nil {
				fail(fmt.Errorf("%s: %w", ruleLabel(j, rc.Name), err))
				continue
			}
			src.rules = append(src.rules, r)
		}
		if sc.Name != "" && set.byName[sc.Name] == nil {
			set.byName[sc.Name] = src
			set.names = append(set.names, sc.Name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	copy(set.digest[:], digest.Sum(nil))
	return set, nil
}

func ruleLabel(i int, name string) string {
	if name != "" {
		return fmt.Sprintf("rule %d (%q)", i+1, name)
	}
	return fmt.Sprintf("rule %d", i+1)
}

// compileRule compiles the i-th rule.
func compileRule(env *cel.Env, i int, rc ruleConfig) (*rule, error) {
	if rc.Name != "" && !ruleNameRE.MatchString(rc.Name) {
		return nil, errors.New("name must match [a-z0-9._-]{1,64}")
	}
	r := &rule{key: rc.Name, label: ruleLabel(i, rc.Name)}
	if r.key == "" {
		r.key = "#" + strconv.Itoa(i+1)
	}
	if strings.TrimSpace(rc.Type) == "" {
		return nil, errors.New("type: is required (a CEL expression such as '\"balance.updated\"')")
	}
	if strings.TrimSpace(rc.Users) == "" && strings.TrimSpace(rc.Channel) == "" {
		return nil, errors.New("users: at least one of users and channel is required")
	}
	var errs []error
	opt := func(dst **expr, field, src string, k kind) {
		if strings.TrimSpace(src) == "" {
			return
		}
		e, err := compile(env, field, src, k)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = e
	}
	opt(&r.when, "when", rc.When, kindBool)
	opt(&r.typ, "type", rc.Type, kindString)
	opt(&r.users, "users", rc.Users, kindUsers)
	opt(&r.chn, "channel", rc.Channel, kindString)
	opt(&r.data, "data", rc.Data, kindAny)
	opt(&r.id, "id", rc.ID, kindString)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// A Delivery is a verified webhook, ready for the rules.
type Delivery struct {
	// ID is the delivery id: the scheme's (CONTRACT.md §6), else a hash
	// of the body.
	ID string
	// Challenge is set for a verified Slack url_verification request,
	// which the edge answers 200 with it instead of running the rules.
	Challenge string
	// data is the default data of the events: the raw body when it is
	// JSON, the JSON of the parsed form otherwise.
	data    []byte
	parsed  any
	headers map[string]string
}

// ErrBody is matched (errors.Is) when a verified webhook's body is
// neither a JSON value nor, sent as a form, a well-formed form the rules
// can read: the edge answers 400.
var ErrBody = errors.New("webhook body is not JSON or a form")

type bodyError struct{ reason string }

func (e *bodyError) Error() string        { return e.reason }
func (e *bodyError) Is(target error) bool { return target == ErrBody }

// Verify checks a webhook's signature over body, the raw request body,
// byte for byte, before anything parses it, and then decodes the body:
// as JSON, or as a form when header's Content-Type is
// application/x-www-form-urlencoded (parseForm). now is the clock for
// timestamped schemes. Errors match ErrUnverified (answer 401) or ErrBody
// (400). It counts the webhook in the source's metrics; ctx is the
// request's, for them.
func (s *Source) Verify(ctx context.Context, header http.Header, body []byte, now time.Time) (Delivery, error) {
	s.tel.received.Add(ctx, 1, s.tel.src(s.name))
	d, err := s.verify(header, body, now)
	if err != nil {
		reason := "malformed_body"
		var rj *Rejection
		if errors.As(err, &rj) {
			reason = rj.Reason
		}
		s.tel.rejected.Add(ctx, 1, s.tel.srcReason(s.name, reason))
	}
	return d, err
}

func (s *Source) verify(header http.Header, body []byte, now time.Time) (Delivery, error) {
	id, err := s.vf.verify(header, body, now)
	if err != nil {
		return Delivery{}, err
	}
	return s.delivery(header, body, id)
}

// delivery parses a (verified) webhook for the rules.
func (s *Source) delivery(header http.Header, body []byte, id string) (Delivery, error) {
	d := Delivery{ID: id, headers: lowerHeaders(header)}
	form := isForm(header)
	if form {
		parsed, data, err := parseForm(body)
		if err != nil {
			return Delivery{}, &bodyError{err.Error()}
		}
		d.parsed, d.data = parsed, data
	} else {
		if !utf8.Valid(body) {
			return Delivery{}, &bodyError{"the body must be UTF-8 JSON (or a form, sent as application/x-www-form-urlencoded)"}
		}
		parsed, err := parseBody(body)
		if err != nil {
			return Delivery{}, &bodyError{err.Error() + " (a form must be sent as application/x-www-form-urlencoded)"}
		}
		d.parsed, d.data = parsed, body
	}
	obj, _ := d.parsed.(map[string]any)
	switch s.vf.scheme {
	case SchemeStripe:
		d.ID = stringField(obj, "id")
	case SchemeSlack:
		d.ID = stringField(obj, "event_id")
		// Slack sends url_verification as JSON only.
		if t, _ := obj["type"].(string); t == "url_verification" && !form {
			c, _ := obj["challenge"].(string)
			if c == "" {
				return Delivery{}, &bodyError{"a url_verification body without a challenge"}
			}
			d.Challenge = c
		}
	}
	if d.ID == "" {
		sum := sha256.Sum256(body)
		d.ID = "sha256:" + hex.EncodeToString(sum[:16])
	}
	return d, nil
}

// stringField returns obj[name] when it is a usable delivery id.
func stringField(obj map[string]any, name string) string {
	v, _ := obj[name].(string)
	if !validDeliveryID(v) {
		return ""
	}
	return v
}

// lowerHeaders maps lower-case header names to their values, joined by
// ", " when repeated.
func lowerHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		k = strings.ToLower(k)
		if prev, ok := out[k]; ok {
			out[k] = prev + ", " + strings.Join(vs, ", ")
			continue
		}
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// A RuleError is a rule that failed on one payload: it made no event and
// the other rules still ran.
type RuleError struct {
	Rule string // `rule 2 ("balance")`
	Err  error
}

func (e RuleError) Error() string { return e.Rule + ": " + e.Err.Error() }

// Events runs every rule on d: each rule whose when holds makes one
// event, its ID derived from the source, the rule and the rule's id (by
// default the delivery id), so that a redelivery makes the same IDs. A
// rule that fails is skipped and returned in the errors, counted and
// logged. The events are valid (bridge.Event.Validate).
func (s *Source) Events(ctx context.Context, d Delivery) ([]*bridge.Event, []RuleError) {
	evs, errs, _ := s.run(d)
	for _, e := range errs {
		s.tel.ruleErrors.Add(ctx, 1, s.tel.srcRule(s.name, e.key))
		s.log.WarnContext(ctx, "webhook source rule failed", "source", s.name, "rule", e.Rule, "delivery_id", d.ID, "err", e.Err)
	}
	if len(evs) == 0 {
		s.tel.ignored.Add(ctx, 1, s.tel.src(s.name))
	} else {
		s.tel.events.Add(ctx, int64(len(evs)), s.tel.src(s.name))
	}
	out := make([]RuleError, len(errs))
	for i, e := range errs {
		out[i] = e.RuleError
	}
	return evs, out
}

type ruleErr struct {
	RuleError
	key string
}

// run evaluates the rules; rules[i] made evs[j] when made[j] == i.
func (s *Source) run(d Delivery) (evs []*bridge.Event, errs []ruleErr, made []int) {
	vars := map[string]any{"body": d.parsed, "headers": d.headers, "source": s.name}
	for i, r := range s.rules {
		ev, ok, err := r.event(s.name, d, vars)
		if err != nil {
			errs = append(errs, ruleErr{RuleError{Rule: r.label, Err: err}, r.key})
			continue
		}
		if ok {
			evs = append(evs, ev)
			made = append(made, i)
		}
	}
	return evs, errs, made
}

// event evaluates r; ok is false when its when does not hold.
func (r *rule) event(source string, d Delivery, vars map[string]any) (ev *bridge.Event, ok bool, err error) {
	if r.when != nil {
		if ok, err := r.when.evalBool(vars); err != nil || !ok {
			return nil, false, err
		}
	}
	ev = &bridge.Event{}
	if ev.Type, err = r.typ.evalString(vars); err != nil {
		return nil, false, err
	}
	if r.users != nil {
		if ev.Users, err = r.users.evalUsers(vars); err != nil {
			return nil, false, err
		}
	}
	if r.chn != nil {
		// "" is no channel, so that a rule can address a channel only
		// when the payload names one (body.?room.orValue("")).
		if ev.Channel, err = r.chn.evalString(vars); err != nil {
			return nil, false, err
		}
	}
	if r.data != nil {
		if ev.Data, err = r.data.evalJSON(vars); err != nil {
			return nil, false, err
		}
	} else {
		ev.Data = bytes.Clone(d.data)
	}
	id := d.ID
	if r.id != nil {
		if id, err = r.id.evalString(vars); err != nil {
			return nil, false, err
		}
		if id == "" {
			return nil, false, errors.New("id: is empty")
		}
	}
	ev.ID = EventID(source, r.key, id)
	if err := ev.Validate(); err != nil {
		return nil, false, err
	}
	return ev, true, nil
}

// EventID is the event ID of the event a source's rule makes from a
// delivery: the source's name, '_' and 32 hex digits of SHA-256 over
// (source, rule, id), the same on every replica, so that a redelivery is
// a duplicate and two rules make two events. rule is the rule's name, or
// "#<n>" for the n-th rule without one.
func EventID(source, rule, id string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return source + "_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// DryRunEvent is an event a dry run would make.
type DryRunEvent struct {
	Rule    string          `json:"rule"`
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Users   []string        `json:"users,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data"`
}

// DryRunResult is the answer of POST /v1/sources/<name>/test.
type DryRunResult struct {
	Verified bool          `json:"verified"`
	Events   []DryRunEvent `json:"events"`
	Errors   []string      `json:"errors"`
}

// DryRun verifies a webhook and runs the rules as Verify and Events
// would, without counting anything. The rules run even when the
// signature does not verify, so that rules can be written against a
// captured payload; Verified says whether it did, and Errors why not,
// followed by the rules' errors.
func (s *Source) DryRun(header http.Header, body []byte, now time.Time) DryRunResult {
	res := DryRunResult{Events: []DryRunEvent{}, Errors: []string{}}
	id, err := s.vf.verify(header, body, now)
	if err != nil {
		res.Errors = append(res.Errors, "signature: "+err.Error())
	} else {
		res.Verified = true
	}
	d, err := s.delivery(header, body, id)
	if err != nil {
		res.Errors = append(res.Errors, "body: "+err.Error())
		return res
	}
	if d.Challenge != "" {
		res.Errors = append(res.Errors, "body: a Slack url_verification request, answered with its challenge; no rule runs")
		return res
	}
	evs, errs, made := s.run(d)
	for j, ev := range evs {
		res.Events = append(res.Events, DryRunEvent{Rule: s.rules[made[j]].label, ID: ev.ID, Type: ev.Type, Users: ev.Users, Channel: ev.Channel, Data: ev.Data})
	}
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	return res
}

var defaultGetenv = os.Getenv

// Rules returns the number of the source's rules.
func (s *Source) Rules() int { return len(s.rules) }
