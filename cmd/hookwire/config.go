package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// minSecretLen is the shortest HMAC key production accepts.
const minSecretLen = 32

// minKeyLen is the shortest publisher key production accepts.
const minKeyLen = 16

// config is everything `serve` needs, from flags whose defaults come from
// HOOKWIRE_* variables.
type config struct {
	// getenv is the environment the config came from; the OTEL_*
	// variables are read from it too.
	getenv         func(string) string
	Dev            bool
	Listen         string
	RedisURL       string
	Stream         string
	APIKeys        []string
	WebhookSecret  string
	JWTSecret      string
	JWTPublicKey   string
	JWKSURL        string
	JWTIssuer      string
	JWTAudience    string
	AllowedOrigins []string
	HistoryTTL     time.Duration
	DedupeTTL      time.Duration
	PingInterval   time.Duration
	DrainTimeout   time.Duration
	MaxBody        int64
	LogLevel       string

	APIKeysFile     string
	SourcesFile     string
	TrustedProxies  []string
	PublishRate     float64
	UpgradeRate     float64
	MaxChannels     int
	MaxConnsPerUser int
	FrameRate       float64
	MaxBatchBody    int64

	// Partitions (0: 1 on one Redis, 16 on a Cluster) and
	// RedisMinReplicas (WAIT for that many replicas before 202): see
	// bridge/redisstream.Options.
	Partitions       int
	RedisMinReplicas int
}

// envFlags registers flags whose defaults come from the environment.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func newEnvFlags(name string, getenv func(string) string, out io.Writer) *envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &envFlags{fs: fs, getenv: getenv}
}

func envName(flagName string) string {
	return "HOOKWIRE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *envFlags) string(p *string, name, def, usage string) {
	if v := f.getenv(envName(name)); v != "" {
		def = v
	}
	f.fs.StringVar(p, name, def, usage+" ($"+envName(name)+")")
}

// secret is string with a HOOKWIRE_<NAME>_FILE variant: the file's
// content (trimmed) is the default, so secrets can come from mounted files
// instead of the environment.
func (f *envFlags) secret(p *string, name, usage string) {
	def := ""
	if path := f.getenv(envName(name) + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s_FILE: %w", envName(name), err))
		}
		def = strings.TrimSpace(string(b))
	}
	f.string(p, name, def, usage+"; or a file named by $"+envName(name)+"_FILE")
}

// number registers a float flag (also for integers) with an environment
// default.
func (f *envFlags) number(p *float64, name string, def float64, usage string) {
	if v := f.getenv(envName(name)); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 {
			f.errs = append(f.errs, fmt.Errorf("%s: want a number ≥ 0, got %q", envName(name), v))
		} else {
			def = n
		}
	}
	f.fs.Float64Var(p, name, def, usage+" ($"+envName(name)+")")
}

func (f *envFlags) bool(p *bool, name string, usage string) {
	def := false
	if v := f.getenv(envName(name)); v != "" {
		def = v == "1" || strings.EqualFold(v, "true")
	}
	f.fs.BoolVar(p, name, def, usage+" ($"+envName(name)+")")
}

func (f *envFlags) duration(p *time.Duration, name string, def time.Duration, usage string) {
	if v := f.getenv(envName(name)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", envName(name), err))
		} else {
			def = d
		}
	}
	f.fs.DurationVar(p, name, def, usage+" ($"+envName(name)+")")
}

func (f *envFlags) list(p *[]string, name, usage string) {
	var raw string
	f.string(&raw, name, "", usage+", comma-separated")
	f.fs.Lookup(name).Value = listValue{p}
	*p = splitList(raw)
}

type listValue struct{ p *[]string }

func (l listValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}
func (l listValue) Set(s string) error { *l.p = splitList(s); return nil }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (f *envFlags) parse(args []string) error {
	if len(f.errs) > 0 {
		return errors.Join(f.errs...)
	}
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	return nil
}

func parseServe(args []string, getenv func(string) string, out io.Writer) (config, error) {
	c := config{getenv: getenv}
	f := newEnvFlags("serve", getenv, out)
	f.bool(&c.Dev, "dev", "development mode: in-memory broker unless a Redis URL is set, generated secrets, any Origin, demo page at /")
	f.string(&c.Listen, "listen", ":8080", "listen address")
	f.secret(&c.RedisURL, "redis-url", "redis:// or rediss:// URL (credentials in the URL); empty = embedded in-memory broker (one replica only)")
	f.string(&c.Stream, "stream", "hookwire", "Redis key prefix shared by one cluster of replicas")
	var partitions, minReplicas float64
	f.number(&partitions, "partitions", 0, "stream partitions, fixed for the life of a bridge (0: 1 on one Redis, 16 on a Redis Cluster; at most 32)")
	f.number(&minReplicas, "redis-min-replicas", 0, "answer 202 only once this many Redis replicas hold the event (WAIT); 0: do not wait")
	f.list(&c.APIKeys, "api-keys", "publisher keys for Authorization: Bearer: key, name:key or name:key:channels=a.*|b;types=t.*")
	f.string(&c.APIKeysFile, "api-keys-file", "", "file of publisher keys (one entry a line), reloaded when it changes")
	f.string(&c.SourcesFile, "sources-file", "", "webhook sources file (YAML), reloaded when it changes")
	f.secret(&c.WebhookSecret, "webhook-secret", "Standard Webhooks secrets (whsec_…) for signed ingest, comma- or space-separated for rotation")
	f.secret(&c.JWTSecret, "jwt-secret", "HMAC key for subscriber tokens (HS256/384/512; 32 bytes or more)")
	f.string(&c.JWTPublicKey, "jwt-public-key-file", "", "PEM public keys file (RS256/PS256, ES256, EdDSA)")
	f.string(&c.JWKSURL, "jwks-url", "", "JWKS endpoint, refreshed in the background")
	f.string(&c.JWTIssuer, "jwt-issuer", "", "required iss claim")
	f.string(&c.JWTAudience, "jwt-audience", "", "required aud claim")
	f.list(&c.AllowedOrigins, "allowed-origins", "allowed browser Origins: exact, https://*.example.com, or \"*\" for any")
	f.list(&c.TrustedProxies, "trusted-proxies", "CIDRs of proxies whose X-Forwarded-For names the client IP")
	f.duration(&c.HistoryTTL, "history-ttl", time.Hour, "how long events stay replayable")
	f.duration(&c.DedupeTTL, "dedupe-ttl", 24*time.Hour, "how long an event id is remembered for idempotency")
	f.duration(&c.PingInterval, "ping-interval", 25*time.Second, "WebSocket ping period; a peer silent for two periods is closed")
	f.duration(&c.DrainTimeout, "drain-timeout", 10*time.Second, "graceful shutdown budget on SIGTERM/SIGINT")
	var maxBody string
	f.string(&maxBody, "max-body", "65536", "largest ingest body in bytes")
	var maxBatchBody string
	f.string(&maxBatchBody, "max-batch-body", "4194304", "largest batch body in bytes")
	f.number(&c.PublishRate, "publish-rate", 0, "events per second each publisher key may post, bursts of the same number (0: unlimited)")
	f.number(&c.UpgradeRate, "upgrade-rate", 0, "WebSocket upgrades per second per client IP, bursts of the same number (0: unlimited)")
	var maxChannels, maxConns float64
	f.number(&maxChannels, "max-channels", 100, "channels per connection")
	f.number(&maxConns, "max-conns-per-user", 32, "connections per user on one replica")
	f.number(&c.FrameRate, "frame-rate", 20, "frames per second a client may send")
	f.string(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	if err := f.parse(args); err != nil {
		return c, err
	}
	c.MaxChannels, c.MaxConnsPerUser = int(maxChannels), int(maxConns)
	c.Partitions, c.RedisMinReplicas = int(partitions), int(minReplicas)
	if c.Partitions < 0 || c.Partitions > 32 || float64(c.Partitions) != partitions || c.RedisMinReplicas < 0 {
		return c, fmt.Errorf("HOOKWIRE_PARTITIONS must be a whole number from 1 to 32 (or 0 for the default), HOOKWIRE_REDIS_MIN_REPLICAS at least 0")
	}
	if _, err := fmt.Sscan(maxBatchBody, &c.MaxBatchBody); err != nil || c.MaxBatchBody <= 0 {
		return c, fmt.Errorf("HOOKWIRE_MAX_BATCH_BODY / --max-batch-body: want a positive number of bytes, got %q", maxBatchBody)
	}
	if _, err := fmt.Sscan(maxBody, &c.MaxBody); err != nil || c.MaxBody <= 0 {
		return c, fmt.Errorf("HOOKWIRE_MAX_BODY / --max-body: want a positive number of bytes, got %q", maxBody)
	}
	return c, c.validate()
}

// validate checks the whole configuration and says which variable to set.
func (c config) validate() error {
	var errs []error
	if c.HistoryTTL <= 0 || c.DedupeTTL <= 0 || c.PingInterval <= 0 || c.DrainTimeout <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if !c.Dev {
		if len(c.APIKeys) == 0 && c.APIKeysFile == "" && c.WebhookSecret == "" {
			errs = append(errs, errors.New("no ingest credentials: set HOOKWIRE_API_KEYS, HOOKWIRE_API_KEYS_FILE or HOOKWIRE_WEBHOOK_SECRET, or run with --dev"))
		}
		if c.JWTSecret == "" && c.JWTPublicKey == "" && c.JWKSURL == "" {
			errs = append(errs, errors.New("no JWT key: set HOOKWIRE_JWT_SECRET, HOOKWIRE_JWT_PUBLIC_KEY_FILE or HOOKWIRE_JWKS_URL, or run with --dev"))
		}
		if c.JWTSecret != "" && len(c.JWTSecret) < minSecretLen {
			errs = append(errs, fmt.Errorf("HOOKWIRE_JWT_SECRET is %d bytes: production needs %d or more (openssl rand -hex 32)", len(c.JWTSecret), minSecretLen))
		}
	}
	if len(c.APIKeys) > 0 && c.APIKeysFile != "" {
		errs = append(errs, errors.New("set HOOKWIRE_API_KEYS or HOOKWIRE_API_KEYS_FILE, not both"))
	}
	if c.MaxChannels < 1 || c.MaxConnsPerUser < 1 || c.FrameRate <= 0 {
		errs = append(errs, errors.New("HOOKWIRE_MAX_CHANNELS, HOOKWIRE_MAX_CONNS_PER_USER and HOOKWIRE_FRAME_RATE must be positive"))
	}
	if c.Stream == "" || strings.ContainsAny(c.Stream, "{}") {
		errs = append(errs, errors.New("HOOKWIRE_STREAM must be non-empty and contain no braces"))
	}
	return errors.Join(errs...)
}

// anyOrigin reports whether production accepts every browser Origin, which
// serve warns about once at start.
func (c config) anyOrigin() bool {
	return !c.Dev && slices.Contains(c.AllowedOrigins, "*")
}
