package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

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
	f.string(&c.RedisURL, "redis-url", "", "redis:// or rediss:// URL; empty = embedded in-memory broker (one replica only)")
	f.string(&c.Stream, "stream", "hookwire", "Redis key prefix shared by one cluster of replicas")
	f.list(&c.APIKeys, "api-keys", "publisher keys for Authorization: Bearer")
	f.string(&c.WebhookSecret, "webhook-secret", "", "Standard Webhooks secret (whsec_…) for signed ingest")
	f.string(&c.JWTSecret, "jwt-secret", "", "HS256 key for subscriber tokens")
	f.string(&c.JWTPublicKey, "jwt-public-key-file", "", "PEM public key file (RS256/ES256/EdDSA)")
	f.string(&c.JWKSURL, "jwks-url", "", "JWKS endpoint, refreshed in the background")
	f.string(&c.JWTIssuer, "jwt-issuer", "", "required iss claim")
	f.string(&c.JWTAudience, "jwt-audience", "", "required aud claim")
	f.list(&c.AllowedOrigins, "allowed-origins", "allowed browser Origins (\"*\" must be explicit)")
	f.duration(&c.HistoryTTL, "history-ttl", time.Hour, "how long events stay replayable")
	f.duration(&c.DedupeTTL, "dedupe-ttl", 24*time.Hour, "how long an event id is remembered for idempotency")
	f.duration(&c.PingInterval, "ping-interval", 25*time.Second, "WebSocket ping period; a peer silent for two periods is closed")
	f.duration(&c.DrainTimeout, "drain-timeout", 10*time.Second, "graceful shutdown budget on SIGTERM/SIGINT")
	var maxBody string
	f.string(&maxBody, "max-body", "65536", "largest ingest body in bytes")
	f.string(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	if err := f.parse(args); err != nil {
		return c, err
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
	if c.JWTPublicKey != "" || c.JWKSURL != "" {
		errs = append(errs, errors.New("HOOKWIRE_JWT_PUBLIC_KEY_FILE and HOOKWIRE_JWKS_URL are not supported yet: use HOOKWIRE_JWT_SECRET"))
	}
	if c.WebhookSecret != "" {
		errs = append(errs, errors.New("HOOKWIRE_WEBHOOK_SECRET is not supported yet: use HOOKWIRE_API_KEYS"))
	}
	if !c.Dev {
		if len(c.APIKeys) == 0 {
			errs = append(errs, errors.New("no ingest credentials: set HOOKWIRE_API_KEYS (or --api-keys), or run with --dev"))
		}
		if c.JWTSecret == "" {
			errs = append(errs, errors.New("no JWT key: set HOOKWIRE_JWT_SECRET (or --jwt-secret), or run with --dev"))
		}
	}
	if c.Stream == "" || strings.ContainsAny(c.Stream, "{}") {
		errs = append(errs, errors.New("HOOKWIRE_STREAM must be non-empty and contain no braces"))
	}
	return errors.Join(errs...)
}
