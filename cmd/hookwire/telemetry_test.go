package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hookwire/hookwire/internal/redistest"
)

// otlpReceiver is an in-test OTLP/HTTP trace receiver.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	*tracepb.Span
	instance string // the resource's service.instance.id
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = gz
	}
	b, _ := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		instance := ""
		for _, kv := range rs.Resource.GetAttributes() {
			if kv.Key == "service.instance.id" {
				instance = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans = append(o.spans, receivedSpan{s, instance})
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpReceiver) trace(id string) []receivedSpan {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []receivedSpan
	for _, s := range o.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out = append(out, s)
		}
	}
	return out
}

// TestOneTracePerEvent: one POST with a traceparent yields one trace with
// the ingest request, the send span and a process span from each replica.
func TestOneTracePerEvent(t *testing.T) {
	rs := redistest.Start(t)
	recv := &otlpReceiver{}
	otlp := httptest.NewServer(recv)
	defer otlp.Close()
	env := append(prodEnv(rs.URL()),
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+otlp.URL,
		"OTEL_BSP_SCHEDULE_DELAY=50",
		"OTEL_SERVICE_NAME=hookwire-test",
	)
	a := serveInProcess(t, env).asReplica(t)
	b := serveInProcess(t, env).asReplica(t)
	onA := a.connect(t, "token="+subToken(t, "42"))
	onB := b.connect(t, "token="+subToken(t, "42"))
	// The welcome comes before the connection's replay from the head ends;
	// a pong comes after it. Posted during the replay, the event would
	// reach that connection by the replay, and its process span would
	// rightly count no live write.
	for _, s := range []*subscriber{onA, onB} {
		s.send(t, `{"op":"ping","ref":"live"}`)
		if f := s.next(t); f["type"] != "pong" {
			t.Fatalf("got %v, want pong", f)
		}
	}

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parentID = "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, a.base+"/v1/events", strings.NewReader(`{"id":"traced-1","type":"balance.updated","users":["42"],"data":{"balance":"1.00"}}`))
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	for _, s := range []*subscriber{onA, onB} {
		f := s.next(t)
		if tp, _ := f["traceparent"].(string); !strings.Contains(tp, traceID) {
			t.Errorf("frame traceparent %q does not continue trace %s", tp, traceID)
		}
	}

	var server, send *receivedSpan
	var process []receivedSpan
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		spans := recv.trace(traceID)
		server, send, process = nil, nil, nil
		for i, s := range spans {
			switch {
			case s.Kind == tracepb.Span_SPAN_KIND_SERVER:
				server = &spans[i]
			case s.Kind == tracepb.Span_SPAN_KIND_PRODUCER:
				send = &spans[i]
			case s.Kind == tracepb.Span_SPAN_KIND_CONSUMER && strings.HasPrefix(s.Name, "process"):
				process = append(process, s)
			}
		}
		if server != nil && send != nil && len(process) >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if server == nil || send == nil || len(process) < 2 {
		t.Fatalf("trace %s: server=%v send=%v process=%d spans; all spans: %d", traceID, server != nil, send != nil, len(process), len(recv.trace(traceID)))
	}
	if hex.EncodeToString(server.ParentSpanId) != parentID {
		t.Errorf("server span does not continue the incoming traceparent")
	}
	if !bytes.Equal(send.ParentSpanId, server.SpanId) {
		t.Errorf("send span is not a child of the server span")
	}
	instances := map[string]bool{}
	for _, p := range process {
		if !bytes.Equal(p.ParentSpanId, send.SpanId) {
			t.Errorf("process span on %s is not a child of the send span", p.instance)
		}
		if len(p.Links) != 1 || !bytes.Equal(p.Links[0].SpanId, send.SpanId) {
			t.Errorf("process span on %s does not link to the send span", p.instance)
		}
		written := int64(-1)
		for _, kv := range p.Attributes {
			if kv.Key == "hookwire.connections.written" {
				written = kv.Value.GetIntValue()
			}
		}
		if written != 1 {
			t.Errorf("process span on %s: written=%d, want 1", p.instance, written)
		}
		instances[p.instance] = true
	}
	if len(instances) != 2 {
		t.Errorf("process spans from instances %v, want two replicas", instances)
	}
	t.Logf("trace %s: %d spans (server %q, send %q, %d process)", traceID, len(recv.trace(traceID)), server.Name, send.Name, len(process))
}

// TestMetricsMoveWithTraffic scrapes /metrics before and after real
// traffic.
func TestMetricsMoveWithTraffic(t *testing.T) {
	rs := redistest.Start(t)
	r := serveInProcess(t, prodEnv(rs.URL())).asReplica(t)
	s := r.connect(t, "token="+subToken(t, "42"))
	// A fresh connection replays from the broker's head after its welcome
	// (subscribers.Server.subscribe): an event accepted before that read
	// reaches the socket as a replayed one, whose age is not a delivery
	// latency. Post once the hand-over's history read is done.
	awaitMetrics(t, r.base, `hookwire_replays_total{result="replayed"} 1`)
	for i := range 5 {
		if status, _ := r.post(t, testAPIKey, `{"type":"balance.updated","users":["42"],"data":{"n":`+string(rune('0'+i))+`}}`); status != 202 {
			t.Fatalf("POST = %d", status)
		}
		s.next(t)
	}
	r.post(t, testAPIKey, `{"type":""}`)
	r.post(t, "wrong-key", `{"type":"t","users":["1"]}`)
	// A frame is counted once the server's write returns, which can be
	// after the client has read it: awaitMetrics scrapes until every line
	// is there.
	text := awaitMetrics(t, r.base,
		`hookwire_events_accepted_total{duplicate="false"} 5`,
		`hookwire_events_rejected_total{reason="invalid-event"} 1`,
		`hookwire_events_rejected_total{reason="unauthorized"} 1`,
		`hookwire_auth_failures_total{endpoint="ingest",reason="unauthorized"} 1`,
		`hookwire_deliveries_total 5`,
		`hookwire_delivery_latency_seconds_count 5`,
		`hookwire_connections 1`,
		`hookwire_replays_total{result="replayed"} 1`,
		`hookwire_stream_lag_entries{partition="0"} 0`, // one partition on one Redis
	)
	if !strings.Contains(text, "\nhttp_server_request_duration_seconds_count") {
		t.Error("/metrics lacks http_server_request_duration_seconds_count")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepHookwire(text))
	}
}

// awaitMetrics scrapes base's /metrics until each of lines is one of its
// lines, at most 5 s, fails for those still missing, and returns the last
// text. The counters only grow, so a count past its figure fails too.
func awaitMetrics(t *testing.T, base string, lines ...string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		text := scrape(t, base)
		got := strings.Split(text, "\n")
		missing := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return slices.Contains(got, l) })
		if len(missing) == 0 {
			return text
		}
		if time.Now().After(deadline) {
			for _, m := range missing {
				t.Errorf("/metrics lacks %q", m)
			}
			return text
		}
	}
}

// scrape returns the text of base's /metrics.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepHookwire(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "hookwire_") || strings.HasPrefix(l, "http_server") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLogsHoldNoSecrets greps a full run's logs for the key, the JWT
// secret, a token and event data. The replica runs in-process: what it
// logs is all slog writes to its stderr (go-redis's own lines are muted
// as in main).
func TestLogsHoldNoSecrets(t *testing.T) {
	rs := redistest.Start(t)
	p := serveInProcess(t, append(prodEnv(rs.URL()), "HOOKWIRE_LOG_LEVEL=debug"))
	r := p.asReplica(t)
	tok := subToken(t, "42", "prices.*")
	s := r.connect(t, "token="+tok+"&channels=prices.EURUSD")
	const secretData = "s3cr3t-balance-9876"
	r.post(t, testAPIKey, `{"type":"balance.updated","users":["42"],"data":{"balance":"`+secretData+`"}}`)
	s.next(t)
	r.post(t, "wrong-key-abcdef", `{"type":"t","users":["1"],"data":"`+secretData+`"}`)
	r.post(t, testAPIKey, `{"type":"","data":"`+secretData+`"}`)
	// A rejected token in the query string.
	http.Get(r.base + "/v1/ws?token=" + tok + "x")
	s.send(t, `{"op":"subscribe","channel":"news","ref":"`+secretData+`"}`)
	s.next(t)
	if err := p.shutdown(t); err != nil { // as SIGTERM: the drain lines too
		t.Errorf("serve: %v", err)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Fatalf("the drain's logs missing; got:\n%s", logs)
	}
	if !strings.Contains(logs, "event accepted") {
		t.Fatalf("debug logs missing; got:\n%s", logs)
	}
	for name, secret := range map[string]string{"API key": testAPIKey, "wrong API key": "wrong-key-abcdef", "JWT secret": testSecret, "token": tok, "event data": secretData} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the %s", name)
		}
	}
}
