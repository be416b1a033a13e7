package main

// The documentation tests: README.md and asyncapi.yaml must agree with the
// code (flags, variables, defaults, metrics, problem types, frames) and
// with CONTRACT.md when it sits beside the repository.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/websocket"
	"github.com/oasdiff/yaml"

	"github.com/hookwire/hookwire/auth"
)

// Paths relative to this package's directory.
const (
	docsREADME   = "../../README.md"
	docsAsyncAPI = "../../asyncapi.yaml"
	docsConfigGo = "config.go"
	docsMetrics  = "metrics.go"
	docsProblem  = "../../problem/problem.go"
	docsOpenAPI  = "../../openapi.yaml"
)

// The frames of CONTRACT.md §3: server to client, and client to server.
var (
	docsServerFrames = []string{"welcome", "event", "subscribed", "unsubscribed", "pong", "reset", "error", "refreshed"}
	docsClientOps    = []string{"subscribe", "unsubscribe", "ping", "refresh"}
)

func docsRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docsFence is one fenced code block of a Markdown document.
type docsFence struct {
	info string // the info string: sh, console, json, ...
	body string
}

// docsFences returns the fenced code blocks of md, in order.
func docsFences(md string) []docsFence {
	var out []docsFence
	var cur *docsFence
	var body []string
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "```") {
			if cur != nil {
				body = append(body, line)
			}
			continue
		}
		if cur == nil {
			cur = &docsFence{info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}
			body = nil
			continue
		}
		cur.body = strings.Join(body, "\n")
		out = append(out, *cur)
		cur = nil
	}
	return out
}

// docsShellInfo reports whether a fence's info string marks shell commands.
func docsShellInfo(info string) bool {
	switch info {
	case "", "sh", "shell", "bash", "console", "shell-session":
		return true
	}
	return false
}

func TestREADMEStartsWithTheTwoCommands(t *testing.T) {
	md := docsRead(t, docsREADME)
	// The commands open the page: they come before the first section.
	intro, _, _ := strings.Cut(md, "\n## ")
	var cmds []string
	for _, f := range docsFences(intro) {
		if !docsShellInfo(f.info) {
			continue
		}
		for _, line := range strings.Split(f.body, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "$ "))
			if line != "" && !strings.HasPrefix(line, "#") {
				cmds = append(cmds, line)
			}
		}
	}
	want := []string{"go run ./cmd/hookwire serve --dev", "go test -race ./..."}
	if len(cmds) < 2 || !slices.Equal(cmds[:2], want) {
		t.Errorf("the first two fenced shell commands of README.md, before its first section, are %q; want %q", cmds[:min(2, len(cmds))], want)
	}
}

// docsFlag is one flag of `hookwire serve`, as its FlagSet prints it.
type docsFlag struct {
	name, typ, env string
	def            string // the printed default, "" when it is the zero value
}

// docsServeFlags returns the flags of `hookwire serve` from the usage that
// parseServe prints for -h, in an environment where no variable is set.
func docsServeFlags(t *testing.T) []docsFlag {
	t.Helper()
	var usage bytes.Buffer
	_, err := parseServe([]string{"-h"}, func(string) string { return "" }, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseServe(-h) = %v, want flag.ErrHelp", err)
	}
	// flag.PrintDefaults: "  -name type" then "    \tusage ($VAR) (default X)".
	re := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: (\w+))?\n    \t(.*)$`)
	envRE := regexp.MustCompile(`\(\$(HOOKWIRE_[A-Z0-9_]+)\)`)
	defRE := regexp.MustCompile(`\(default (.*)\)$`)
	var flags []docsFlag
	for _, m := range re.FindAllStringSubmatch(usage.String(), -1) {
		f := docsFlag{name: m[1], typ: m[2]}
		if e := envRE.FindStringSubmatch(m[3]); e != nil {
			f.env = e[1]
		}
		if d := defRE.FindStringSubmatch(m[3]); d != nil {
			f.def = d[1]
		}
		flags = append(flags, f)
	}
	if len(flags) == 0 {
		t.Fatalf("no flags found in the usage of serve:\n%s", usage.String())
	}
	return flags
}

// docsFlagRow is one row of README.md's configuration table of serve.
type docsFlagRow struct {
	env, meaning, def string
}

// docsFlagRows returns the rows "| `--flag` | `HOOKWIRE_VAR` | meaning | default |".
func docsFlagRows(t *testing.T, md string) map[string]docsFlagRow {
	t.Helper()
	rows := make(map[string]docsFlagRow)
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 4 {
			t.Errorf("README.md: a configuration row needs 4 cells (flag, variable, meaning, default), without | in them: %s", line)
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		name := strings.TrimPrefix(strings.Trim(cells[0], "`"), "--")
		if _, dup := rows[name]; dup {
			t.Errorf("README.md lists --%s twice", name)
		}
		rows[name] = docsFlagRow{env: strings.Trim(cells[1], "`"), meaning: cells[2], def: cells[3]}
	}
	return rows
}

var docsBacktick = regexp.MustCompile("`([^`]*)`")

func TestREADMEListsEveryServeFlag(t *testing.T) {
	md := docsRead(t, docsREADME)
	flags := docsServeFlags(t)

	// The usage and config.go's source must name the same flags, so that
	// a flag registered some other way cannot slip past the usage parser.
	src := docsRead(t, docsConfigGo)
	body := src[strings.Index(src, "func parseServe("):]
	body = body[:strings.Index(body, "\n}\n")]
	var fromSource []string
	for _, m := range regexp.MustCompile(`f\.(?:string|bool|duration|list|secret|number)\(&[^,]+,\s*"([a-z0-9-]+)"`).FindAllStringSubmatch(body, -1) {
		fromSource = append(fromSource, m[1])
	}
	var fromUsage []string
	for _, f := range flags {
		fromUsage = append(fromUsage, f.name)
	}
	slices.Sort(fromSource)
	if !slices.Equal(fromSource, fromUsage) { // PrintDefaults sorts by name
		t.Errorf("config.go registers %v, but serve -h prints %v", fromSource, fromUsage)
	}

	rows := docsFlagRows(t, md)
	for _, f := range flags {
		if f.env != envName(f.name) {
			t.Errorf("--%s: usage names $%s, want $%s", f.name, f.env, envName(f.name))
		}
		if !strings.Contains(md, "`--"+f.name+"`") || !strings.Contains(md, f.env) {
			t.Errorf("README.md does not mention --%s and %s", f.name, f.env)
		}
		row, ok := rows[f.name]
		if !ok {
			t.Errorf("README.md's configuration table has no row for --%s", f.name)
			continue
		}
		if row.env != f.env {
			t.Errorf("README.md: --%s is documented with %s, want %s", f.name, row.env, f.env)
		}
		if row.meaning == "" {
			t.Errorf("README.md: --%s has no meaning", f.name)
		}
		docsCheckDefault(t, f, row.def)
	}
	for name := range rows {
		if !slices.Contains(fromUsage, name) {
			t.Errorf("README.md documents --%s, which serve does not have", name)
		}
	}
}

// docsCheckDefault checks that a README default cell states f's default.
func docsCheckDefault(t *testing.T, f docsFlag, cell string) {
	t.Helper()
	if f.def == "" { // the zero value: empty, false or no list
		if !(strings.HasPrefix(cell, "none") || strings.HasPrefix(cell, "empty") || (f.typ == "" && cell == "`false`") || (f.typ == "float" && cell == "`0`")) {
			t.Errorf("README.md: the default of --%s is %q; want none, empty (or `false` for a boolean, `0` for a number)", f.name, cell)
		}
		return
	}
	m := docsBacktick.FindStringSubmatch(cell)
	if m == nil {
		t.Errorf("README.md: the default of --%s is %q; want the value in backticks", f.name, cell)
		return
	}
	got := m[1]
	switch f.typ {
	case "duration":
		want, err1 := time.ParseDuration(f.def)
		have, err2 := time.ParseDuration(got)
		if err1 != nil || err2 != nil || have != want {
			t.Errorf("README.md: the default of --%s is %s; want %s", f.name, got, want)
		}
	case "string":
		want, err := strconv.Unquote(f.def)
		if err != nil {
			want = f.def
		}
		if got != want {
			t.Errorf("README.md: the default of --%s is %q; want %q", f.name, got, want)
		}
	default:
		if got != f.def {
			t.Errorf("README.md: the default of --%s is %q; want %q", f.name, got, f.def)
		}
	}
}

// docsPromName is the Prometheus name of an OpenTelemetry instrument.
func docsPromName(kind, name string) string {
	n := strings.ReplaceAll(name, ".", "_")
	if strings.HasSuffix(kind, "Counter") && !strings.HasSuffix(kind, "UpDownCounter") {
		n += "_total"
	}
	return n
}

func TestREADMEListsEveryMetric(t *testing.T) {
	md := docsRead(t, docsREADME)
	src := docsRead(t, docsMetrics)
	re := regexp.MustCompile(`\.((?:Int64|Float64)(?:Observable)?(?:Counter|UpDownCounter|Gauge|Histogram))\("([a-z0-9_.]+)"`)
	ms := re.FindAllStringSubmatch(src, -1)
	if len(ms) == 0 {
		t.Fatalf("no instruments found in %s", docsMetrics)
	}
	for _, m := range ms {
		if name := docsPromName(m[1], m[2]); !strings.Contains(md, "`"+name+"`") {
			t.Errorf("README.md does not list the metric %s (%s %q in %s)", name, m[1], m[2], docsMetrics)
		}
	}
}

func TestREADMEListsEveryProblemType(t *testing.T) {
	md := docsRead(t, docsREADME)
	src := docsRead(t, docsProblem)
	base := regexp.MustCompile(`base\s*=\s*"([^"]+)"`).FindStringSubmatch(src)
	if base == nil {
		t.Fatalf("no base URI in %s", docsProblem)
	}
	types := regexp.MustCompile(`Type = base \+ "([a-z0-9-]+)"`).FindAllStringSubmatch(src, -1)
	if len(types) == 0 {
		t.Fatalf("no problem types in %s", docsProblem)
	}
	for _, m := range types {
		if uri := base[1] + m[1]; !strings.Contains(md, "`"+uri+"`") {
			t.Errorf("README.md does not list the problem type %s", uri)
		}
	}
}

// docsLoadAsyncAPI parses asyncapi.yaml into plain JSON values.
func docsLoadAsyncAPI(t *testing.T) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(docsRead(t, docsAsyncAPI)))
	if err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	return doc
}

// docsPointer resolves a local JSON reference ("#/a/b") in doc.
func docsPointer(doc any, ref string) (any, error) {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only local references are supported", ref)
	}
	cur := doc
	for _, tok := range strings.Split(path, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not in an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return cur, nil
}

// docsResolve returns node with every $ref replaced by its target.
func docsResolve(doc, node any, depth int) (any, error) {
	if depth > 32 {
		return nil, errors.New("$ref cycle")
	}
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			target, err := docsPointer(doc, ref)
			if err != nil {
				return nil, err
			}
			return docsResolve(doc, target, depth+1)
		}
		out := make(map[string]any, len(n))
		for k, v := range n {
			r, err := docsResolve(doc, v, depth)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			r, err := docsResolve(doc, v, depth)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return node, nil
}

// docsAllowNull marks schemas that accept any value as nullable: in JSON
// Schema (AsyncAPI's dialect) {} accepts null, in OpenAPI 3.0 it needs
// nullable.
func docsAllowNull(s map[string]any) {
	anyValue := true
	for k := range s {
		switch k {
		case "description", "title", "example", "examples":
		default:
			anyValue = false
		}
	}
	if anyValue {
		s["nullable"] = true
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for _, p := range props {
			if m, ok := p.(map[string]any); ok {
				docsAllowNull(m)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if m, ok := s[k].(map[string]any); ok {
			docsAllowNull(m)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if l, ok := s[k].([]any); ok {
			for _, v := range l {
				if m, ok := v.(map[string]any); ok {
					docsAllowNull(m)
				}
			}
		}
	}
}

// docsMessage is one message of asyncapi.yaml with its compiled payload.
type docsMessage struct {
	name     string
	payload  map[string]any
	schema   *openapi3.Schema
	props    map[string]bool // the members the payload declares
	examples []any
}

// docsMessages returns the messages of asyncapi.yaml keyed by the frame
// they describe: the single value of payload.properties.type (server
// frames) or .op (client frames).
func docsMessages(t *testing.T, doc map[string]any) map[string]*docsMessage {
	t.Helper()
	resolved, err := docsResolve(doc, doc, 0)
	if err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	comps, _ := resolved.(map[string]any)["components"].(map[string]any)
	msgs, _ := comps["messages"].(map[string]any)
	out := make(map[string]*docsMessage)
	for key, v := range msgs {
		m, _ := v.(map[string]any)
		payload, _ := m["payload"].(map[string]any)
		props, _ := payload["properties"].(map[string]any)
		var frame string
		for _, discriminator := range []string{"type", "op"} {
			p, _ := props[discriminator].(map[string]any)
			if enum, _ := p["enum"].([]any); len(enum) == 1 {
				frame, _ = enum[0].(string)
			}
		}
		if frame == "" {
			t.Errorf("asyncapi.yaml: message %s: payload.properties.type or .op needs an enum of one value", key)
			continue
		}
		if _, dup := out[frame]; dup {
			t.Errorf("asyncapi.yaml: two messages describe the %s frame", frame)
		}
		b, _ := json.Marshal(payload)
		var copied map[string]any
		json.Unmarshal(b, &copied)
		docsAllowNull(copied)
		b, _ = json.Marshal(copied)
		var s openapi3.Schema
		if err := json.Unmarshal(b, &s); err != nil {
			t.Errorf("asyncapi.yaml: message %s: payload: %v", key, err)
			continue
		}
		if err := s.Validate(context.Background()); err != nil {
			t.Errorf("asyncapi.yaml: message %s: payload is not a valid schema: %v", key, err)
			continue
		}
		dm := &docsMessage{name: key, payload: payload, schema: &s, props: make(map[string]bool)}
		for p := range props {
			dm.props[p] = true
		}
		exs, _ := m["examples"].([]any)
		for _, ex := range exs {
			dm.examples = append(dm.examples, ex.(map[string]any)["payload"])
		}
		out[frame] = dm
	}
	return out
}

func TestSpecsMentionEveryFrame(t *testing.T) {
	spec := docsRead(t, docsAsyncAPI)
	doc := docsLoadAsyncAPI(t)
	if v, _ := doc["asyncapi"].(string); v != "3.0.0" {
		t.Errorf("asyncapi.yaml: asyncapi = %q, want 3.0.0", v)
	}
	for _, name := range docsServerFrames {
		if !strings.Contains(spec, "enum: ["+name+"]") {
			t.Errorf("asyncapi.yaml does not describe the %q frame (no `enum: [%s]`)", name, name)
		}
	}
	for _, name := range docsClientOps {
		if !strings.Contains(spec, "enum: ["+name+"]") {
			t.Errorf("asyncapi.yaml does not describe the %q op (no `enum: [%s]`)", name, name)
		}
	}
	msgs := docsMessages(t, doc)
	for _, name := range slices.Concat(docsServerFrames, docsClientOps) {
		if msgs[name] == nil {
			t.Errorf("asyncapi.yaml has no message for %q", name)
		}
	}
	if len(msgs) != len(docsServerFrames)+len(docsClientOps) {
		var names []string
		for n := range msgs {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Errorf("asyncapi.yaml describes the frames %v; want exactly those of CONTRACT.md §3", names)
	}

	// The channel: GET /v1/ws with its query bindings and every message.
	resolved, err := docsResolve(doc, doc, 0)
	if err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	var channel map[string]any
	chans, _ := resolved.(map[string]any)["channels"].(map[string]any)
	for _, c := range chans {
		if c, _ := c.(map[string]any); c["address"] == "/v1/ws" {
			channel = c
		}
	}
	if channel == nil {
		t.Fatal("asyncapi.yaml has no channel with address /v1/ws")
	}
	ws, _ := channel["bindings"].(map[string]any)["ws"].(map[string]any)
	query, _ := ws["query"].(map[string]any)["properties"].(map[string]any)
	for _, p := range []string{"token", "since", "channels"} {
		if query[p] == nil {
			t.Errorf("asyncapi.yaml: the /v1/ws channel's ws binding has no query parameter %q", p)
		}
	}
	if cm, _ := channel["messages"].(map[string]any); len(cm) != len(msgs) {
		t.Errorf("asyncapi.yaml: the /v1/ws channel lists %d messages, want %d", len(cm), len(msgs))
	}
	desc, _ := channel["description"].(string)
	for _, s := range []string{"1001", "1008", "1009", "1013", "401", "403", "426", "503", "4 KiB", "100 channels", "256 frames"} {
		if !strings.Contains(desc, s) {
			t.Errorf("asyncapi.yaml: the /v1/ws channel's description does not mention %s", s)
		}
	}
	for _, code := range []string{"bad_request", "forbidden", "limit_exceeded", "unavailable"} {
		if !strings.Contains(spec, "`"+code+"`") {
			t.Errorf("asyncapi.yaml does not document the error code %s", code)
		}
	}

	// Operations: the server sends every server frame and receives every op.
	sent, received := map[string]bool{}, map[string]bool{}
	ops, _ := resolved.(map[string]any)["operations"].(map[string]any)
	for name, o := range ops {
		o, _ := o.(map[string]any)
		var list []any
		l, _ := o["messages"].([]any)
		list = append(list, l...)
		action, _ := o["action"].(string)
		if reply, ok := o["reply"].(map[string]any); ok {
			rl, _ := reply["messages"].([]any)
			for _, m := range rl {
				if action == "receive" {
					sent[docsFrameOf(m)] = true
				}
			}
		}
		for _, m := range list {
			switch action {
			case "send":
				sent[docsFrameOf(m)] = true
			case "receive":
				received[docsFrameOf(m)] = true
			default:
				t.Errorf("asyncapi.yaml: operation %s: action %q", name, action)
			}
		}
	}
	for _, f := range docsServerFrames {
		if !sent[f] {
			t.Errorf("asyncapi.yaml: no operation sends (or replies with) the %s frame", f)
		}
	}
	for _, op := range docsClientOps {
		if !received[op] {
			t.Errorf("asyncapi.yaml: no operation receives the %s op", op)
		}
	}

	t.Run("variables", func(t *testing.T) {
		// Every HOOKWIRE_ variable the specs name is one hookwire reads
		// (a serve flag's, its _FILE variant, or a tool's) and README.md
		// documents it.
		real := map[string]bool{"HOOKWIRE_URL": true, "HOOKWIRE_API_KEY": true}
		for _, f := range docsServeFlags(t) {
			real[f.env], real[f.env+"_FILE"] = true, true
		}
		md := docsRead(t, docsREADME)
		re := regexp.MustCompile(`HOOKWIRE_[A-Z0-9_]*[A-Z0-9]`)
		for _, spec := range []string{docsAsyncAPI, docsOpenAPI} {
			vars := re.FindAllString(docsRead(t, spec), -1)
			if len(vars) == 0 {
				t.Fatalf("%s names no HOOKWIRE_ variable", spec)
			}
			for _, v := range slices.Compact(slices.Sorted(slices.Values(vars))) {
				if !real[v] {
					t.Errorf("%s names %s, which hookwire does not read", spec, v)
				}
				if !strings.Contains(md, v) {
					t.Errorf("README.md does not mention %s, which %s names", v, spec)
				}
			}
		}
	})
}

// docsFrameOf returns the frame a resolved message describes.
func docsFrameOf(m any) string {
	mm, _ := m.(map[string]any)
	payload, _ := mm["payload"].(map[string]any)
	props, _ := payload["properties"].(map[string]any)
	for _, d := range []string{"type", "op"} {
		p, _ := props[d].(map[string]any)
		if enum, _ := p["enum"].([]any); len(enum) == 1 {
			s, _ := enum[0].(string)
			return s
		}
	}
	return ""
}

func TestSpecsAsyncAPIExamplesMatchSchemas(t *testing.T) {
	msgs := docsMessages(t, docsLoadAsyncAPI(t))
	for frame, m := range msgs {
		if len(m.examples) == 0 {
			t.Errorf("asyncapi.yaml: message %s has no example", m.name)
		}
		for i, ex := range m.examples {
			if err := m.schema.VisitJSON(ex); err != nil {
				t.Errorf("asyncapi.yaml: message %s, example %d does not match its payload: %v", m.name, i, err)
			}
			if obj, _ := ex.(map[string]any); obj["type"] != frame && obj["op"] != frame {
				t.Errorf("asyncapi.yaml: message %s, example %d is not a %s frame", m.name, i, frame)
			}
		}
	}
}

// TestSpecsMatchServerFrames runs a dev server and checks every frame it
// sends against asyncapi.yaml: its schema, and no member the spec does not
// declare.
func TestSpecsMatchServerFrames(t *testing.T) {
	msgs := docsMessages(t, docsLoadAsyncAPI(t))
	const key, secret = "docs-key-0123456789", "docs-secret-0123456789abcdef0123456789"
	env := map[string]string{"HOOKWIRE_API_KEYS": key, "HOOKWIRE_JWT_SECRET": secret, "HOOKWIRE_DRAIN_TIMEOUT": "1s"}
	cfg, err := parseServe([]string{"--dev", "--listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, io.Discard, func(a string) { addrc <- a }) }()
	var conns []*websocket.Conn
	defer func() {
		for _, ws := range conns { // closed by the client, so the drain has little to do
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			ws.SetReadDeadline(time.Now().Add(2 * time.Second))
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					break
				}
			}
			ws.Close()
		}
		cancel()
		if err := <-done; err != nil {
			t.Logf("serve: %v", err)
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}

	seen := map[string]bool{}
	check := func(raw []byte) map[string]any {
		t.Helper()
		var f map[string]any
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		typ, _ := f["type"].(string)
		m := msgs[typ]
		if m == nil {
			t.Errorf("the server sent a %q frame, which asyncapi.yaml does not describe: %s", typ, raw)
			return f
		}
		seen[typ] = true
		if err := m.schema.VisitJSON(f); err != nil {
			t.Errorf("frame %s does not match asyncapi.yaml's %s payload: %v", raw, m.name, err)
		}
		for k := range f {
			if !m.props[k] {
				t.Errorf("frame %s has the member %q, which asyncapi.yaml's %s payload does not declare", raw, k, m.name)
			}
		}
		return f
	}
	dial := func(query string) *websocket.Conn {
		t.Helper()
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/v1/ws?"+query, nil)
		if err != nil {
			if resp != nil {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("dial: %s: %s", resp.Status, b)
			}
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, ws)
		return ws
	}
	next := func(ws *websocket.Conn) map[string]any {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, raw, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return check(raw)
	}
	send := func(ws *websocket.Conn, frame string) {
		t.Helper()
		var f map[string]any
		if json.Unmarshal([]byte(frame), &f) == nil {
			op, _ := f["op"].(string)
			if m := msgs[op]; m == nil {
				t.Errorf("asyncapi.yaml has no %q op", op)
			} else if err := m.schema.VisitJSON(f); err != nil {
				t.Errorf("client frame %s does not match asyncapi.yaml: %v", frame, err)
			}
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(f map[string]any, typ string) {
		t.Helper()
		if f["type"] != typ {
			t.Fatalf("got %v, want a %s frame", f, typ)
		}
	}
	post := func(body string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s = %s %s", body, resp.Status, b)
		}
	}

	tok, err := auth.Sign([]byte(secret), auth.Claims{Subject: "42", Channels: []string{"prices.*"}, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ws := dial("channels=prices.EURUSD&token=" + tok)
	if f := next(ws); f["type"] != "welcome" || f["cursor"] == nil {
		t.Fatalf("first frame %v, want a welcome with a cursor", f)
	}
	send(ws, `{"op":"subscribe","channel":"prices.GBPUSD","ref":"1"}`)
	expect(next(ws), "subscribed")
	send(ws, `{"op":"subscribe","channel":"orders.desk-3","ref":"2"}`)
	if f := next(ws); f["type"] != "error" || f["code"] != "forbidden" || f["ref"] != "2" {
		t.Fatalf("got %v, want a forbidden error for ref 2", f)
	}
	send(ws, `{"op":"unsubscribe","channel":"prices.GBPUSD","ref":"3"}`)
	expect(next(ws), "unsubscribed")
	send(ws, `{"op":"ping","ref":"4"}`)
	expect(next(ws), "pong")
	send(ws, `not json`)
	if f := next(ws); f["type"] != "error" || f["code"] != "bad_request" {
		t.Fatalf("got %v, want a bad_request error", f)
	}
	post(`{"type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`)
	if f := next(ws); f["type"] != "event" || f["channel"] != nil {
		t.Fatalf("got %v, want a user event without channel", f)
	}
	post(`{"type":"price.tick","channel":"prices.EURUSD","data":{"bid":"1.0841"}}`)
	if f := next(ws); f["type"] != "event" || f["channel"] != "prices.EURUSD" {
		t.Fatalf("got %v, want a channel event", f)
	}
	// Refresh with a token that no longer grants prices.EURUSD: an
	// unsubscribed frame without ref, then refreshed; a bad token gets an
	// invalid_token error.
	narrow, err := auth.Sign([]byte(secret), auth.Claims{Subject: "42", Channels: []string{"news"}, Expiry: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	send(ws, `{"op":"refresh","token":"`+narrow+`","ref":"5"}`)
	expect(next(ws), "unsubscribed")
	expect(next(ws), "refreshed")
	send(ws, `{"op":"refresh","token":"garbage","ref":"6"}`)
	if f := next(ws); f["type"] != "error" || f["code"] != "invalid_token" || f["ref"] != "6" {
		t.Fatalf("got %v, want an invalid_token error for ref 6", f)
	}
	// A cursor of an epoch the broker never had: history gone.
	old := dial("since=aaaaaaaaaa-1-0&token=" + tok)
	expect(next(old), "welcome")
	expect(next(old), "reset")

	for _, f := range docsServerFrames {
		if !seen[f] {
			t.Errorf("the test saw no %s frame", f)
		}
	}

	// The metrics the server exports are the ones README.md lists.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	md := docsRead(t, docsREADME)
	names := regexp.MustCompile(`(?m)^(hookwire_[a-z0-9_]+)`).FindAllStringSubmatch(string(b), -1)
	if len(names) == 0 {
		t.Errorf("/metrics has no hookwire_ metric:\n%s", b)
	}
	for _, m := range names {
		if !strings.Contains(md, "`"+m[1]+"`") {
			t.Errorf("README.md does not list the metric %s that /metrics exports", m[1])
		}
	}
}

// TestDocsBoundRefInCharacters: CONTRACT.md §3 bounds a ref to 64
// characters (not bytes); README.md and asyncapi.yaml say the same.
func TestDocsBoundRefInCharacters(t *testing.T) {
	for _, doc := range []string{docsREADME, docsAsyncAPI} {
		text := docsRead(t, doc)
		if regexp.MustCompile(`ref[^.\n]{0,40}64 bytes`).MatchString(text) {
			t.Errorf("%s bounds ref in bytes; the contract says 64 characters", doc)
		}
		if !regexp.MustCompile("`?ref`?[^.\\n]{0,40}64 characters").MatchString(text) {
			t.Errorf("%s does not say that a ref is at most 64 characters", doc)
		}
	}
	ref, err := docsPointer(docsLoadAsyncAPI(t), "#/components/schemas/Ref")
	if m, _ := ref.(map[string]any); err != nil || fmt.Sprint(m["maxLength"]) != "64" {
		t.Errorf("asyncapi.yaml: Ref schema %v (%v), want maxLength 64", ref, err)
	}
}
