package main

// The deployment tests: deploy/ holds a Docker Compose cluster (replicas,
// Redis, nginx, the OpenTelemetry Collector, Jaeger, Prometheus). Docker is
// not available on the dev machines, so these tests check its structure:
// the replicas form one cluster and report to the collector, the collector
// and Prometheus are wired to them, no secret is committed, and the runbook
// covers every metric README.md lists.

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oasdiff/yaml"

	"github.com/hookwire/hookwire/bridge"
)

// Paths relative to this package's directory.
const (
	deployDir        = "../../deploy"
	deployCompose    = deployDir + "/compose.yaml"
	deployCollector  = deployDir + "/otel-collector.yaml"
	deployPrometheus = deployDir + "/prometheus.yml"
	deployNginx      = deployDir + "/nginx.conf"
	deployDockerfile = deployDir + "/Dockerfile"
	deployRunbook    = deployDir + "/RUNBOOK.md"
	deployGitignore  = deployDir + "/.gitignore"
)

// deploySecretVars must never hold a literal value in compose.yaml.
var deploySecretVars = []string{"HOOKWIRE_API_KEYS", "HOOKWIRE_JWT_SECRET", "HOOKWIRE_WEBHOOK_SECRET"}

// deployLoad parses a YAML file into generic maps and slices.
func deployLoad(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if m == nil {
		t.Fatalf("%s is empty", path)
	}
	return m
}

func deployMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func deployStrings(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// deployStack is compose.yaml, with its services sorted by role.
type deployStack struct {
	services   map[string]map[string]any
	replicas   []string // hookwire services, sorted
	redis      string
	collector  string
	jaeger     string
	nginx      string
	prometheus string
}

// deployEnv returns a service's environment, in either compose form (a map,
// or a list of NAME=value).
func deployEnv(svc map[string]any) map[string]string {
	env := make(map[string]string)
	switch e := svc["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			switch v := v.(type) {
			case string:
				env[k] = v
			case nil:
				env[k] = ""
			default:
				b, _ := json.Marshal(v)
				env[k] = string(b)
			}
		}
	case []any:
		for _, kv := range e {
			s, _ := kv.(string)
			k, v, _ := strings.Cut(s, "=")
			env[k] = v
		}
	}
	return env
}

func deployImage(svc map[string]any) string {
	s, _ := svc["image"].(string)
	return s
}

// deployIsReplica reports whether a service runs hookwire: built from
// deploy/Dockerfile, or configured with HOOKWIRE_ variables.
func deployIsReplica(svc map[string]any) bool {
	if b := deployMap(svc["build"]); b != nil {
		if df, _ := b["dockerfile"].(string); strings.HasSuffix(df, "Dockerfile") {
			return true
		}
	}
	for k := range deployEnv(svc) {
		if strings.HasPrefix(k, "HOOKWIRE_") {
			return true
		}
	}
	return false
}

func deployLoadStack(t *testing.T) deployStack {
	t.Helper()
	doc := deployLoad(t, deployCompose)
	st := deployStack{services: make(map[string]map[string]any)}
	for name, v := range deployMap(doc["services"]) {
		svc := deployMap(v)
		if svc == nil {
			t.Errorf("compose.yaml: service %s is not a mapping", name)
			continue
		}
		st.services[name] = svc
		img := deployImage(svc)
		role := func(field *string, what string) {
			if *field != "" {
				t.Errorf("compose.yaml: two %s services, %s and %s", what, *field, name)
			}
			*field = name
		}
		switch {
		case deployIsReplica(svc):
			st.replicas = append(st.replicas, name)
		case strings.Contains(img, "opentelemetry-collector"):
			role(&st.collector, "collector")
		case strings.Contains(img, "jaeger"):
			role(&st.jaeger, "jaeger")
		case strings.Contains(img, "prometheus"):
			role(&st.prometheus, "prometheus")
		case strings.HasPrefix(img, "nginx") || strings.Contains(img, "/nginx"):
			role(&st.nginx, "nginx")
		case strings.HasPrefix(img, "redis") || strings.Contains(img, "/redis"):
			role(&st.redis, "redis")
		}
	}
	slices.Sort(st.replicas)
	return st
}

// deployMounts returns the host paths a service mounts.
func deployMounts(svc map[string]any) []string {
	var out []string
	vols, _ := svc["volumes"].([]any)
	for _, v := range vols {
		switch v := v.(type) {
		case string:
			src, _, _ := strings.Cut(v, ":")
			out = append(out, src)
		case map[string]any:
			if s, ok := v["source"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// deployListenPort is the port a replica listens on inside its container.
func deployListenPort(env map[string]string) string {
	listen := env["HOOKWIRE_LISTEN"]
	if listen == "" {
		return "8080"
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	return port
}

// deployRef matches a compose reference to a variable that has no default:
// ${NAME}, ${NAME?message} or ${NAME:?message}.
var deployRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$`)

func TestDeployComposeServices(t *testing.T) {
	st := deployLoadStack(t)
	for what, name := range map[string]string{
		"redis": st.redis, "otel-collector": st.collector, "jaeger": st.jaeger,
		"nginx": st.nginx, "prometheus": st.prometheus,
	} {
		if name == "" {
			t.Errorf("compose.yaml has no %s service", what)
		}
	}
	if st.redis != "" {
		redis := st.services[st.redis]
		cmd := strings.Join(deployStrings(redis["command"]), " ")
		for _, want := range []string{"--appendonly yes", "--appendfsync"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("compose.yaml: %s's command %q lacks %s", st.redis, cmd, want)
			}
		}
		if deployMap(redis["healthcheck"]) == nil {
			t.Errorf("compose.yaml: %s has no healthcheck", st.redis)
		}
	}
	mounts := map[string]string{st.collector: "otel-collector.yaml", st.nginx: "nginx.conf", st.prometheus: "prometheus.yml"}
	for name, file := range mounts {
		if name == "" {
			continue
		}
		found := false
		for _, m := range deployMounts(st.services[name]) {
			if filepath.Base(m) == file {
				found = true
			}
		}
		if !found {
			t.Errorf("compose.yaml: %s does not mount %s", name, file)
		}
	}
	if st.jaeger != "" && !strings.Contains(deployImage(st.services[st.jaeger]), "jaegertracing/") {
		t.Errorf("compose.yaml: %s's image is %q, want a jaegertracing image", st.jaeger, deployImage(st.services[st.jaeger]))
	}
	if st.collector != "" && !strings.Contains(deployImage(st.services[st.collector]), "opentelemetry-collector-contrib") {
		t.Errorf("compose.yaml: %s's image is %q, want the contrib distribution", st.collector, deployImage(st.services[st.collector]))
	}
}

func TestDeployComposeReplicas(t *testing.T) {
	st := deployLoadStack(t)
	if len(st.replicas) < 2 {
		t.Fatalf("compose.yaml has %d hookwire replicas %v, want 2 or more", len(st.replicas), st.replicas)
	}
	first := deployEnv(st.services[st.replicas[0]])
	for _, name := range st.replicas {
		svc := st.services[name]
		env := deployEnv(svc)

		// One cluster: the same Redis and stream.
		for _, v := range []string{"HOOKWIRE_REDIS_URL", "HOOKWIRE_STREAM"} {
			if env[v] == "" {
				t.Errorf("compose.yaml: %s does not set %s", name, v)
			} else if env[v] != first[v] {
				t.Errorf("compose.yaml: %s has %s=%q but %s has %q: they would not form one cluster", name, v, env[v], st.replicas[0], first[v])
			}
		}
		if u, err := url.Parse(env["HOOKWIRE_REDIS_URL"]); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			t.Errorf("compose.yaml: %s: HOOKWIRE_REDIS_URL=%q is not a redis:// URL", name, env["HOOKWIRE_REDIS_URL"])
		} else if st.redis != "" && u.Hostname() != st.redis {
			t.Errorf("compose.yaml: %s: HOOKWIRE_REDIS_URL points at %q, not the %s service", name, u.Hostname(), st.redis)
		}

		// Telemetry to the collector.
		want := map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "hookwire"}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("compose.yaml: %s has %s=%q, want %q", name, k, env[k], v)
			}
		}
		ep := env["OTEL_EXPORTER_OTLP_ENDPOINT"]
		u, err := url.Parse(ep)
		switch {
		case ep == "":
			t.Errorf("compose.yaml: %s does not set OTEL_EXPORTER_OTLP_ENDPOINT", name)
		case err != nil || u.Hostname() == "":
			t.Errorf("compose.yaml: %s: OTEL_EXPORTER_OTLP_ENDPOINT=%q is not a URL", name, ep)
		case st.collector != "" && u.Hostname() != st.collector:
			t.Errorf("compose.yaml: %s: OTEL_EXPORTER_OTLP_ENDPOINT=%q does not point at the %s service", name, ep, st.collector)
		default:
			port := "4318" // OTLP/HTTP, the SDK's default protocol
			if strings.HasPrefix(env["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc") {
				port = "4317"
			}
			if u.Port() != port {
				t.Errorf("compose.yaml: %s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want port %s for protocol %q", name, ep, port, env["OTEL_EXPORTER_OTLP_PROTOCOL"])
			}
		}

		// Built from deploy/Dockerfile, with the repository as context.
		if b := deployMap(svc["build"]); b == nil {
			if deployImage(svc) == "" {
				t.Errorf("compose.yaml: %s has neither build nor image", name)
			}
		} else if df, _ := b["dockerfile"].(string); df != "deploy/Dockerfile" {
			t.Errorf("compose.yaml: %s builds %q, want deploy/Dockerfile (context: the repository)", name, df)
		}

		// The grace period covers the drain.
		drain := 10 * time.Second
		if d, err := time.ParseDuration(env["HOOKWIRE_DRAIN_TIMEOUT"]); err == nil {
			drain = d
		}
		grace, _ := svc["stop_grace_period"].(string)
		if g, err := time.ParseDuration(grace); err != nil || g <= drain {
			t.Errorf("compose.yaml: %s: stop_grace_period %q must be longer than HOOKWIRE_DRAIN_TIMEOUT (%s)", name, grace, drain)
		}
	}
}

func TestDeployComposeHasNoSecrets(t *testing.T) {
	st := deployLoadStack(t)
	for name, svc := range st.services {
		env := deployEnv(svc)
		for _, v := range deploySecretVars {
			val, ok := env[v]
			if !ok {
				continue
			}
			if !deployRef.MatchString(val) {
				t.Errorf("compose.yaml: %s sets %s to a value, not a ${%s:?...} reference to the environment or deploy/.env", name, v, v)
			}
		}
	}
	for _, name := range st.replicas {
		env := deployEnv(st.services[name])
		for _, v := range []string{"HOOKWIRE_API_KEYS", "HOOKWIRE_JWT_SECRET"} {
			if _, ok := env[v]; !ok {
				t.Errorf("compose.yaml: %s does not set %s (as a ${%s:?...} reference)", name, v, v)
			}
		}
	}
	gi, err := os.ReadFile(deployGitignore)
	if err != nil || !slices.Contains(strings.Fields(string(gi)), ".env") {
		t.Errorf("deploy/.gitignore must list .env, the file that holds the secrets")
	}
}

// deployPipelineRefs checks that every component a pipeline names is
// defined in its section, and returns the names.
func deployPipelineRefs(t *testing.T, doc map[string]any, pipeline string, p map[string]any, section string) []string {
	t.Helper()
	defined := deployMap(doc[section])
	names := deployStrings(p[section])
	for _, n := range names {
		if _, ok := defined[n]; !ok {
			t.Errorf("otel-collector.yaml: pipeline %s uses %s %q, which %s does not define", pipeline, section[:len(section)-1], n, section)
		}
	}
	return names
}

// deployComponentType is a collector component's type: its id before "/".
func deployComponentType(id string) string {
	typ, _, _ := strings.Cut(id, "/")
	return typ
}

func TestDeployCollector(t *testing.T) {
	st := deployLoadStack(t)
	doc := deployLoad(t, deployCollector)

	// The OTLP receiver, on every interface.
	otlp := deployMap(deployMap(doc["receivers"])["otlp"])
	protocols := deployMap(otlp["protocols"])
	for proto, port := range map[string]string{"grpc": "4317", "http": "4318"} {
		ep, _ := deployMap(protocols[proto])["endpoint"].(string)
		if ep != "0.0.0.0:"+port {
			t.Errorf("otel-collector.yaml: receivers.otlp.protocols.%s.endpoint is %q, want 0.0.0.0:%s", proto, ep, port)
		}
	}

	service := deployMap(doc["service"])
	for _, ext := range deployStrings(service["extensions"]) {
		if _, ok := deployMap(doc["extensions"])[ext]; !ok {
			t.Errorf("otel-collector.yaml: service.extensions names %q, which extensions does not define", ext)
		}
	}
	pipelines := deployMap(service["pipelines"])
	seen := map[string]bool{}
	for id, v := range pipelines {
		p := deployMap(v)
		signal := deployComponentType(id)
		seen[signal] = true
		receivers := deployPipelineRefs(t, doc, id, p, "receivers")
		processors := deployPipelineRefs(t, doc, id, p, "processors")
		exporters := deployPipelineRefs(t, doc, id, p, "exporters")
		if len(receivers) == 0 || len(exporters) == 0 {
			t.Errorf("otel-collector.yaml: pipeline %s needs receivers and exporters", id)
		}
		if !slices.Contains(receivers, "otlp") {
			t.Errorf("otel-collector.yaml: pipeline %s does not receive OTLP", id)
		}
		if len(processors) == 0 || deployComponentType(processors[0]) != "memory_limiter" {
			t.Errorf("otel-collector.yaml: pipeline %s: processors %v, want memory_limiter first", id, processors)
		}
		if !slices.ContainsFunc(processors, func(p string) bool { return deployComponentType(p) == "batch" }) {
			t.Errorf("otel-collector.yaml: pipeline %s has no batch processor", id)
		}
		types := map[string]string{}
		for _, e := range exporters {
			types[deployComponentType(e)] = e
		}
		if _, ok := types["debug"]; !ok {
			t.Errorf("otel-collector.yaml: pipeline %s does not export to debug", id)
		}
		switch signal {
		case "traces":
			id := types["otlp_grpc"]
			if id == "" {
				id = types["otlp"]
			}
			exp := deployMap(deployMap(doc["exporters"])[id])
			ep, _ := exp["endpoint"].(string)
			host, port, _ := net.SplitHostPort(ep)
			if id == "" || host == "" || (st.jaeger != "" && host != st.jaeger) || port != "4317" {
				t.Errorf("otel-collector.yaml: the traces pipeline must export over OTLP/gRPC to %s:4317; exporters %v", st.jaeger, exporters)
			}
			if insecure, _ := deployMap(exp["tls"])["insecure"].(bool); id != "" && !insecure {
				t.Errorf("otel-collector.yaml: exporter %s: Jaeger listens without TLS here; set tls.insecure", id)
			}
		case "metrics":
			id := types["prometheus"]
			ep, _ := deployMap(deployMap(doc["exporters"])[id])["endpoint"].(string)
			if id == "" || !strings.HasSuffix(ep, ":8889") {
				t.Errorf("otel-collector.yaml: the metrics pipeline must export to prometheus on :8889; exporters %v", exporters)
			}
		}
	}
	for _, s := range []string{"traces", "metrics"} {
		if !seen[s] {
			t.Errorf("otel-collector.yaml has no %s pipeline", s)
		}
	}
}

func TestDeployPrometheusScrapesEveryReplica(t *testing.T) {
	st := deployLoadStack(t)
	doc := deployLoad(t, deployPrometheus)
	type scrape struct{ job, path string }
	targets := map[string]scrape{}
	for _, v := range doc["scrape_configs"].([]any) {
		sc := deployMap(v)
		job, _ := sc["job_name"].(string)
		path, _ := sc["metrics_path"].(string)
		if path == "" {
			path = "/metrics"
		}
		for _, s := range sc["static_configs"].([]any) {
			for _, tg := range deployStrings(deployMap(s)["targets"]) {
				targets[tg] = scrape{job, path}
			}
		}
	}
	for _, name := range st.replicas {
		tg := net.JoinHostPort(name, deployListenPort(deployEnv(st.services[name])))
		if s, ok := targets[tg]; !ok {
			t.Errorf("prometheus.yml does not scrape the replica %s (%s)", name, tg)
		} else if s.path != "/metrics" {
			t.Errorf("prometheus.yml scrapes %s at %s, want /metrics", tg, s.path)
		}
	}
	if st.collector != "" {
		if _, ok := targets[net.JoinHostPort(st.collector, "8889")]; !ok {
			t.Errorf("prometheus.yml does not scrape the collector's prometheus exporter (%s:8889)", st.collector)
		}
	}
}

// deployBlock returns the body of the first `<head> {` block in conf.
func deployBlock(conf, head string) string {
	i := strings.Index(conf, head)
	if i < 0 {
		return ""
	}
	open := strings.Index(conf[i:], "{")
	if open < 0 {
		return ""
	}
	start := i + open + 1
	depth := 1
	for j := start; j < len(conf); j++ {
		switch conf[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[start:j]
			}
		}
	}
	return ""
}

func TestDeployNginx(t *testing.T) {
	st := deployLoadStack(t)
	raw, err := os.ReadFile(deployNginx)
	if err != nil {
		t.Fatal(err)
	}
	// Drop comments, then normalise spaces.
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		l, _, _ = strings.Cut(l, "#")
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	conf := strings.Join(lines, "\n")

	ws := deployBlock(conf, "location = /v1/ws")
	if ws == "" {
		ws = deployBlock(conf, "location /v1/ws")
	}
	if ws == "" {
		t.Fatal("nginx.conf has no location for /v1/ws")
	}
	for _, want := range []string{"proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection "} {
		if !strings.Contains(ws, want) {
			t.Errorf("nginx.conf: the /v1/ws location lacks %q", want)
		}
	}
	for _, sticky := range []string{"ip_hash", "sticky", "hash "} {
		if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sticky)).MatchString(conf) {
			t.Errorf("nginx.conf uses %q: hookwire needs no sticky sessions, use round-robin", strings.TrimSpace(sticky))
		}
	}
	upstreams := regexp.MustCompile(`upstream [A-Za-z0-9_]+ \{`).FindAllString(conf, -1)
	if len(upstreams) == 0 {
		t.Fatal("nginx.conf has no upstream block")
	}
	for _, head := range upstreams {
		body := deployBlock(conf, head)
		for _, name := range st.replicas {
			tg := net.JoinHostPort(name, deployListenPort(deployEnv(st.services[name])))
			if !strings.Contains(body, "server "+tg) {
				t.Errorf("nginx.conf: %s does not list the replica %s", strings.TrimSuffix(head, " {"), tg)
			}
		}
	}
}

func TestDeployDockerfile(t *testing.T) {
	b, err := os.ReadFile(deployDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, re := range []string{
		`(?m)^FROM golang:1\.26\S* AS \w+`,
		`CGO_ENABLED=0 go build .*\./cmd/hookwire`,
		`(?m)^FROM gcr\.io/distroless/static\S*`,
		`(?m)^USER (nonroot|[1-9][0-9]*)`,
		`(?m)^EXPOSE 8080$`,
	} {
		if !regexp.MustCompile(re).MatchString(df) {
			t.Errorf("deploy/Dockerfile does not match %s", re)
		}
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindStringSubmatch(df)
	var entry []string
	if m != nil {
		json.Unmarshal([]byte(m[1]), &entry)
	}
	if !slices.Equal(entry, []string{"/hookwire", "serve"}) {
		t.Errorf("deploy/Dockerfile: ENTRYPOINT %v, want [\"/hookwire\",\"serve\"]", entry)
	}
}

// deployREADMEMetrics returns the metrics in the first column of README.md's
// Operations table.
func deployREADMEMetrics(t *testing.T) []string {
	t.Helper()
	md := docsRead(t, docsREADME)
	_, ops, ok := strings.Cut(md, "\n## Operations")
	if !ok {
		t.Fatal("README.md has no Operations section")
	}
	if i := strings.Index(ops, "\n## "); i >= 0 {
		ops = ops[:i]
	}
	var out []string
	first := regexp.MustCompile("^\\| `([a-z][a-z0-9_]*)` \\|")
	for _, line := range strings.Split(ops, "\n") {
		if m := first.FindStringSubmatch(line); m != nil && strings.Contains(m[1], "_") {
			out = append(out, m[1])
		}
	}
	return out
}

func TestDeployRunbookMentionsEveryMetric(t *testing.T) {
	metrics := deployREADMEMetrics(t)
	if !slices.ContainsFunc(metrics, func(m string) bool { return strings.HasPrefix(m, "hookwire_") }) {
		t.Fatalf("found no hookwire_ metric in README.md's Operations table (got %v)", metrics)
	}
	runbook := docsRead(t, deployRunbook)
	for _, m := range metrics {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(m) + `\b`).MatchString(runbook) {
			t.Errorf("deploy/RUNBOOK.md does not mention %s, which README.md's Operations table lists", m)
		}
	}
	for _, s := range []string{"traceparent", "messaging.message.id", "service.instance.id", "hookwire.connections.matched",
		"hookwire.connections.written", "hookwire.connections.failed", "HOOKWIRE_DRAIN_TIMEOUT", "Retry-After", "openssl rand -hex 32"} {
		if !strings.Contains(runbook, s) {
			t.Errorf("deploy/RUNBOOK.md does not mention %s", s)
		}
	}
}

// TestSpecsEventTraceparent checks that an event frame from a traced
// server, which carries the send span's traceparent, matches asyncapi.yaml,
// and that the schema refuses a malformed one.
func TestSpecsEventTraceparent(t *testing.T) {
	m := docsMessages(t, docsLoadAsyncAPI(t))["event"]
	if m == nil {
		t.Fatal("asyncapi.yaml has no event message")
	}
	if !m.props["traceparent"] {
		t.Fatal("asyncapi.yaml's event payload does not declare traceparent")
	}
	cur, err := bridge.ParseCursor("cpbr2v0fvu-1795309989983-0")
	if err != nil {
		t.Fatal(err)
	}
	ev := &bridge.Event{
		ID: "evt_balance_42_0001", Type: "balance.updated", Users: []string{"42"},
		Data: json.RawMessage(`{"balance":"10.00"}`), Cursor: cur, Time: time.UnixMilli(1795309989983),
		Trace: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-ea28af63b9a8aeb7-01"},
	}
	var f map[string]any
	if err := json.Unmarshal(ev.Frame(), &f); err != nil {
		t.Fatal(err)
	}
	if f["traceparent"] != ev.Trace["traceparent"] {
		t.Fatalf("the event frame %s does not carry the traceparent", ev.Frame())
	}
	if err := m.schema.VisitJSON(f); err != nil {
		t.Errorf("frame %s does not match asyncapi.yaml's event payload: %v", ev.Frame(), err)
	}
	for k := range f {
		if !m.props[k] {
			t.Errorf("frame %s has the member %q, which asyncapi.yaml's event payload does not declare", ev.Frame(), k)
		}
	}
	f["traceparent"] = "not-a-traceparent"
	if err := m.schema.VisitJSON(f); err == nil {
		t.Error("asyncapi.yaml's event payload accepts a malformed traceparent")
	}
}
