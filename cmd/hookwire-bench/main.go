// Command hookwire-bench is a load tool for hookwire. It speaks only the
// public contract (CONTRACT.md): POST /v1/events and /v1/events/batch with
// a Bearer API key, and GET /v1/ws with an HS256 subscriber token. It only
// ever talks to a loopback address, and every scenario is bounded in time
// and in size: it stops by itself.
//
//	hookwire-bench <idle|personal|broadcast|ingest> [flags]
//
// It prints human progress to standard error and, at the end, exactly one
// JSON line with every parameter and figure to standard output.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookwire-bench:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: hookwire-bench <scenario> [flags]

Scenarios (loopback targets only; each one stops by itself):
  idle       hold --conns authenticated WebSocket connections for --duration;
             server RSS per connection and CPU
  personal   --users users, one connection each, --rate events/s to random
             users; end-to-end latency, loss, duplicates, misrouting
  broadcast  --subscribers connections on one channel, --rate events/s to it;
             deliveries/s, latency, loss
  ingest     --publishers concurrent publishers as fast as possible, single
             events (--batch 0) or batches of --batch events

Common flags: --url, --api-key (or HOOKWIRE_API_KEY), --jwt-secret (or
HOOKWIRE_JWT_SECRET), --duration, --server-pid, --redis-pid (CPU seconds and
RSS from /proc), --json, --procs (this tool's GOMAXPROCS), --cpuprofile.
Run "hookwire-bench <scenario> -h" for the flags of one scenario.

To measure capacity rather than abuse limits, start the server with
HOOKWIRE_PUBLISH_RATE=0 and HOOKWIRE_UPGRADE_RATE=0.
`

// Hard caps: whatever the flags say, a run stays within these.
const (
	maxDuration    = 10 * time.Minute
	maxConns       = 25000 // about the loopback ephemeral port range
	maxPublishers  = 512
	maxBatch       = 1000 // contract: at most 1000 events per batch
	maxOpenRate    = 20000
	maxOpenConc    = 256
	maxGrace       = 30 * time.Second
	maxScheduled   = 5_000_000  // events one personal/broadcast run may publish
	maxPersonalHz  = 50000      // personal events per second
	maxBroadcastHz = 2000       // broadcast events per second
	maxFanoutHz    = 2_000_000  // broadcast deliveries per second (subscribers × rate)
	maxIngestCap   = 50_000_000 // events one ingest run may post
	maxBitsetBytes = 256 << 20  // broadcast duplicate detection memory
)

// config is one run's parsed flags.
type config struct {
	scenario  string
	target    *target
	apiKey    string
	jwtSecret string
	duration  time.Duration
	conns     int // idle: connections; personal: users; broadcast: subscribers
	rate      float64
	pubs      int
	batch     int
	maxEvents int
	openRate  float64
	openConc  int
	grace     time.Duration
	serverPID int
	redisPID  int
	jsonOut   bool
	cpuProf   string
	procs     int
	params    map[string]any
}

// parseFlags parses a scenario and its flags; ctx bounds the resolution of
// --url's host.
func parseFlags(ctx context.Context, args []string, stderr io.Writer) (*config, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprint(stderr, usage)
			return nil, flag.ErrHelp
		}
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("%w: missing scenario", errUsage)
	}
	c := &config{scenario: args[0]}
	fs := flag.NewFlagSet("hookwire-bench "+c.scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rawURL string
	fs.StringVar(&rawURL, "url", envOr("HOOKWIRE_URL", "http://127.0.0.1:8080"), "hookwire base URL (must resolve to loopback)")
	fs.StringVar(&c.apiKey, "api-key", os.Getenv("HOOKWIRE_API_KEY"), "publisher API key (Authorization: Bearer)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", os.Getenv("HOOKWIRE_JWT_SECRET"), "HS256 secret for subscriber tokens")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measured window (hold time for idle); capped at "+maxDuration.String())
	fs.IntVar(&c.serverPID, "server-pid", 0, "hookwire server pid: CPU seconds and RSS from /proc")
	fs.IntVar(&c.redisPID, "redis-pid", 0, "redis-server pid: CPU seconds from /proc")
	fs.BoolVar(&c.jsonOut, "json", true, "print one JSON line with every figure at the end (false: a human summary)")
	fs.StringVar(&c.cpuProf, "cpuprofile", "", "write this tool's own CPU profile to `file`")
	fs.IntVar(&c.procs, "procs", 0, "GOMAXPROCS of this tool (0: leave it)")
	needWS := false
	switch c.scenario {
	case "idle":
		needWS = true
		fs.IntVar(&c.conns, "conns", 10000, "connections to open and hold (users idle-<i>)")
	case "personal":
		needWS = true
		fs.IntVar(&c.conns, "users", 2000, "users, one connection each (users personal-<i>)")
		fs.Float64Var(&c.rate, "rate", 1000, "events per second, each to one random user")
		fs.IntVar(&c.pubs, "publishers", 16, "concurrent publishers (keep-alive HTTP clients)")
		fs.DurationVar(&c.grace, "grace", 2*time.Second, "how long to wait for outstanding deliveries after publishing")
	case "broadcast":
		needWS = true
		fs.IntVar(&c.conns, "subscribers", 2000, "connections subscribed to channel bench.broadcast")
		fs.Float64Var(&c.rate, "rate", 20, "events per second to the channel")
		fs.IntVar(&c.pubs, "publishers", 4, "concurrent publishers (keep-alive HTTP clients)")
		fs.DurationVar(&c.grace, "grace", 2*time.Second, "how long to wait for outstanding deliveries after publishing")
	case "ingest":
		fs.IntVar(&c.pubs, "publishers", 64, "concurrent publishers, each posting as fast as it can")
		fs.IntVar(&c.batch, "batch", 0, "0: POST /v1/events; N: POST /v1/events/batch with N events per request")
		fs.IntVar(&c.maxEvents, "max-events", 20_000_000, "stop after posting this many events")
	default:
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("%w: unknown scenario %q", errUsage, c.scenario)
	}
	if needWS {
		fs.Float64Var(&c.openRate, "open-rate", 2000, "connections opened per second")
		fs.IntVar(&c.openConc, "open-concurrency", 16, "connections being opened at once")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if c.duration <= 0 || c.duration > maxDuration {
		bad("--duration must be in (0, %s]", maxDuration)
	}
	if c.procs < 0 || c.procs > 256 {
		bad("--procs must be in [0, 256]")
	}
	if c.serverPID < 0 || c.redisPID < 0 {
		bad("pids must be positive")
	}
	if needWS {
		if c.jwtSecret == "" {
			bad("--jwt-secret (or HOOKWIRE_JWT_SECRET) is required")
		}
		if c.conns < 1 || c.conns > maxConns {
			bad("connections must be in [1, %d]", maxConns)
		}
		if !(c.openRate > 0 && c.openRate <= maxOpenRate) {
			bad("--open-rate must be in (0, %d]", maxOpenRate)
		}
		if c.openConc < 1 || c.openConc > maxOpenConc {
			bad("--open-concurrency must be in [1, %d]", maxOpenConc)
		}
	}
	if c.scenario != "idle" {
		if c.apiKey == "" {
			bad("--api-key (or HOOKWIRE_API_KEY) is required")
		}
		if c.pubs < 1 || c.pubs > maxPublishers {
			bad("--publishers must be in [1, %d]", maxPublishers)
		}
	}
	switch c.scenario {
	case "personal", "broadcast":
		maxHz := float64(maxPersonalHz)
		if c.scenario == "broadcast" {
			maxHz = maxBroadcastHz
			if c.rate*float64(c.conns) > maxFanoutHz {
				bad("--subscribers × --rate must be at most %d deliveries/s", maxFanoutHz)
			}
		}
		if !(c.rate > 0 && c.rate <= maxHz) {
			bad("--rate must be in (0, %g]", maxHz)
		}
		if c.grace < 0 || c.grace > maxGrace {
			bad("--grace must be in [0, %s]", maxGrace)
		}
		if n := c.rate * c.duration.Seconds(); n > maxScheduled {
			bad("--rate × --duration is %.0f events; the cap is %d", n, maxScheduled)
		} else if n < 1 {
			bad("--rate × --duration must schedule at least one event")
		}
		if c.scenario == "broadcast" {
			if bits := c.rate * c.duration.Seconds() * float64(c.conns); bits/8 > maxBitsetBytes {
				bad("--subscribers × --rate × --duration is too large to track (%.0f deliveries)", bits)
			}
		}
	case "ingest":
		if c.batch < 0 || c.batch > maxBatch {
			bad("--batch must be in [0, %d]", maxBatch)
		}
		if c.maxEvents < 1 || c.maxEvents > maxIngestCap {
			bad("--max-events must be in [1, %d]", maxIngestCap)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", errUsage, strings.Join(errs, "; "))
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --url %q: want http://host:port", errUsage, rawURL)
	}
	c.target, err = resolveLoopback(ctx, u)
	if err != nil {
		return nil, err
	}

	// Every flag of this scenario, secrets left out, goes into the report.
	c.params = map[string]any{}
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "api-key", "jwt-secret", "json":
			return
		}
		switch v := f.Value.(flag.Getter).Get().(type) {
		case time.Duration:
			c.params[f.Name] = v.String()
		default:
			c.params[f.Name] = v
		}
	})
	return c, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Report is the one JSON line: scenario and params, then the figures of
// the scenario that ran, then what every scenario reports.
type Report struct {
	Scenario string
	Params   map[string]any
	Figures  any // *IdleFigures, *DeliveryFigures or *IngestFigures
	Common
}

// Common are the figures of every scenario.
type Common struct {
	MeasuredS      float64  `json:"measured_s"`
	ServerCPUS     *float64 `json:"server_cpu_s"`
	RedisCPUS      *float64 `json:"redis_cpu_s"`
	ServerRSSBytes *int64   `json:"server_rss_bytes"`
	BenchCPUS      float64  `json:"bench_cpu_s"` // this tool's own CPU over the measured window
	// The machine is shared: machine_cpu_s is every CPU's busy time over
	// the window, other_cpu_s what neither the server, Redis nor this tool
	// used of it (other processes, the kernel's unattributed work).
	MachineCPUS *float64   `json:"machine_cpu_s"`
	OtherCPUS   *float64   `json:"other_cpu_s"`
	LoadAvg     [2]float64 `json:"loadavg_1m"` // at the window's start and end
	GoVersion   string     `json:"go_version"`
	GOMAXPROCS  int        `json:"gomaxprocs"`
	NumCPU      int        `json:"num_cpu"`
	NofileLimit uint64     `json:"nofile_limit"`
	StartedAt   string     `json:"started_at"`
	Interrupted bool       `json:"interrupted,omitempty"`
	Warnings    []string   `json:"warnings,omitempty"`
}

// MarshalJSON flattens the three parts into one object.
func (r *Report) MarshalJSON() ([]byte, error) {
	head, err := json.Marshal(struct {
		Scenario string         `json:"scenario"`
		Params   map[string]any `json:"params"`
	}{r.Scenario, r.Params})
	if err != nil {
		return nil, err
	}
	parts := [][]byte{head}
	if r.Figures != nil {
		f, err := json.Marshal(r.Figures)
		if err != nil {
			return nil, err
		}
		parts = append(parts, f)
	}
	c, err := json.Marshal(r.Common)
	if err != nil {
		return nil, err
	}
	parts = append(parts, c)
	out := []byte{'{'}
	for _, p := range parts {
		inner := bytes.TrimSpace(p)
		inner = inner[1 : len(inner)-1]
		if len(inner) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, inner...)
	}
	return append(out, '}'), nil
}

// run is the whole tool: main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(ctx, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, pid := range []int{cfg.serverPID, cfg.redisPID} {
		if pid != 0 {
			if _, err := readCPU(pid); err != nil {
				return fmt.Errorf("%w: pid %d: %v", errUsage, pid, err)
			}
		}
	}
	if cfg.procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.procs))
	}
	b := &bench{cfg: cfg, log: stderr, base: time.Now()}
	b.rep = &Report{Scenario: cfg.scenario, Params: cfg.params, Common: Common{
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		StartedAt:  b.base.UTC().Format(time.RFC3339),
	}}
	b.rep.NofileLimit = raiseNofile()
	need := uint64(cfg.conns + cfg.pubs + 64)
	if b.rep.NofileLimit < need {
		b.warn("RLIMIT_NOFILE is %d, fewer than the %d descriptors this run needs: expect failed connections", b.rep.NofileLimit, need)
	}
	b.logf("%s against %s (loopback %v)", cfg.scenario, cfg.target.base, cfg.target.ips)
	if cfg.cpuProf != "" {
		f, err := os.Create(cfg.cpuProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	switch cfg.scenario {
	case "idle":
		err = b.idle(ctx)
	case "personal", "broadcast":
		err = b.deliver(ctx)
	case "ingest":
		err = b.ingest(ctx)
	}
	if err != nil && !errors.Is(err, errNoConns) {
		return err
	}
	if ctx.Err() != nil {
		b.rep.Interrupted = true
	}
	if b.saw429.Load() {
		b.warn("the server answered 429: it rate-limits publishers or upgrades; to measure its capacity, start it with HOOKWIRE_PUBLISH_RATE=0 and HOOKWIRE_UPGRADE_RATE=0")
	}
	if cfg.serverPID != 0 {
		if rss, err := readRSS(cfg.serverPID); err == nil {
			b.rep.ServerRSSBytes = &rss
		}
	}
	if perr := b.print(stdout); perr != nil {
		return perr
	}
	return err // errNoConns: the report says why
}

// errNoConns ends a scenario that could not open a single connection; the
// report is still printed, with the failures.
var errNoConns = errors.New("no connection could be opened")

// bench holds what every scenario shares.
type bench struct {
	cfg  *config
	mu   sync.Mutex // serializes log and rep.Warnings
	log  io.Writer
	base time.Time // monotonic origin of the latency timestamps
	rep  *Report

	saw429 atomic.Bool // some request was refused as rate limited
}

func (b *bench) logf(format string, a ...any) {
	s := fmt.Sprintf("hookwire-bench: "+format+"\n", a...)
	b.mu.Lock()
	io.WriteString(b.log, s)
	b.mu.Unlock()
}

func (b *bench) warn(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	b.mu.Lock()
	b.rep.Warnings = append(b.rep.Warnings, s)
	b.mu.Unlock()
	b.logf("warning: %s", s)
}

// now is nanoseconds since b.base on the monotonic clock.
func (b *bench) now() int64 { return int64(time.Since(b.base)) }

// window measures server, Redis and own CPU over a span of time.
type window struct {
	b               *bench
	start           time.Time
	server, redis   float64
	serverOK, redOK bool
	self            float64
	machine         float64
	machineOK       bool
}

func (b *bench) startWindow() *window {
	b.rep.LoadAvg[0] = loadAvg1()
	w := &window{b: b, start: time.Now(), self: selfCPU()}
	if v, err := machineBusy(); err == nil {
		w.machine, w.machineOK = v, true
	}
	if b.cfg.serverPID != 0 {
		w.server, w.serverOK = cpuOK(b.cfg.serverPID)
	}
	if b.cfg.redisPID != 0 {
		w.redis, w.redOK = cpuOK(b.cfg.redisPID)
	}
	return w
}

// stop returns the elapsed time and fills the report's CPU figures.
func (w *window) stop() time.Duration {
	elapsed := time.Since(w.start)
	w.b.rep.BenchCPUS = round3(selfCPU() - w.self)
	w.b.rep.LoadAvg[1] = loadAvg1()
	if v, err := machineBusy(); err == nil && w.machineOK && w.serverOK {
		m := round3(v - w.machine)
		w.b.rep.MachineCPUS = &m
		defer func() {
			o := m - w.b.rep.BenchCPUS
			if w.b.rep.ServerCPUS != nil {
				o -= *w.b.rep.ServerCPUS
			}
			if w.b.rep.RedisCPUS != nil {
				o -= *w.b.rep.RedisCPUS
			}
			o = round3(max(o, 0))
			w.b.rep.OtherCPUS = &o
		}()
	}
	if w.serverOK {
		if v, ok := cpuOK(w.b.cfg.serverPID); ok {
			d := round3(v - w.server)
			w.b.rep.ServerCPUS = &d
		}
	}
	if w.redOK {
		if v, ok := cpuOK(w.b.cfg.redisPID); ok {
			d := round3(v - w.redis)
			w.b.rep.RedisCPUS = &d
		}
	}
	return elapsed
}

func cpuOK(pid int) (float64, bool) {
	v, err := readCPU(pid)
	return v, err == nil
}

// perServerCPU returns n per server CPU-second, or nil without a pid.
func (b *bench) perServerCPU(n float64) *float64 {
	if b.rep.ServerCPUS == nil || *b.rep.ServerCPUS <= 0 {
		return nil
	}
	v := math.Round(n / *b.rep.ServerCPUS)
	return &v
}

func (b *bench) print(w io.Writer) error {
	line, err := json.Marshal(b.rep)
	if err != nil {
		return err
	}
	if b.cfg.jsonOut {
		_, err = fmt.Fprintf(w, "%s\n", line)
		return err
	}
	var m map[string]any
	json.Unmarshal(line, &m)
	var sb strings.Builder
	printTree(&sb, "", m)
	_, err = io.WriteString(w, sb.String())
	return err
}

func printTree(sb *strings.Builder, prefix string, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case map[string]any:
			printTree(sb, prefix+k+".", v)
		default:
			b, _ := json.Marshal(v)
			fmt.Fprintf(sb, "%-40s %s\n", prefix+k, b)
		}
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// progress prints status() to the log every second until stop is called.
func (b *bench) progress(status func() string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.logf("%s", status())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// sleepUntil waits until t or ctx is done; it reports whether ctx is
// still live.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	return sleepUntil(ctx, time.Now().Add(d))
}
