package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/hookwire/hookwire/ingest"
	"github.com/hookwire/hookwire/sources"
)

const sourcesUsage = `Usage:
  hookwire sources check FILE [--skip-secrets]
      validate a sources file offline: every source, scheme, secret and rule
  hookwire sources test NAME --body F [--header K:V]... [--url U] [--api-key K]
      send a webhook to the dry run POST /v1/sources/NAME/test and print the
      events it would make (F is a file, or - for stdin)
`

// sourcesCmd is `hookwire sources check|test`.
func sourcesCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, sourcesUsage)
		return errors.New("missing sources command: check or test")
	}
	switch args[0] {
	case "check":
		return sourcesCheckCmd(args[1:], getenv, stdout, stderr)
	case "test":
		return sourcesTestCmd(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, sourcesUsage)
		return nil
	}
	fmt.Fprint(stderr, sourcesUsage)
	return fmt.Errorf("unknown sources command %q", args[0])
}

// positional splits off the one positional argument, which may come
// before or after the flags.
func positional(f *envFlags, args []string, what string) (string, error) {
	var pos string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[0], args[1:]
	}
	if len(f.errs) > 0 {
		return "", errors.Join(f.errs...)
	}
	if err := f.fs.Parse(args); err != nil {
		return "", err
	}
	rest := f.fs.Args()
	if pos == "" && len(rest) > 0 {
		pos, rest = rest[0], rest[1:]
	}
	switch {
	case pos == "":
		return "", fmt.Errorf("missing %s", what)
	case len(rest) > 0:
		return "", fmt.Errorf("unexpected argument %q", rest[0])
	}
	return pos, nil
}

func sourcesCheckCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newEnvFlags("sources check", getenv, stderr)
	var skip bool
	f.fs.BoolVar(&skip, "skip-secrets", false, "do not read secret_env variables and secret_file files (check everything else)")
	path, err := positional(f, args, "FILE")
	if err != nil {
		return err
	}
	set, err := sources.Load(path, sources.Options{Getenv: getenv, SkipSecrets: skip})
	if err != nil {
		return err
	}
	names := set.Names()
	fmt.Fprintf(stdout, "%s: %d sources, all valid\n", path, len(names))
	for _, n := range names {
		src, _ := set.Lookup(n)
		fmt.Fprintf(stdout, "  %-20s scheme %-18s %d rules  POST /v1/sources/%s\n", n, src.Scheme(), src.Rules(), n)
	}
	return nil
}

// headerList is a repeatable --header K:V flag.
type headerList struct{ h http.Header }

func (l *headerList) String() string { return "" }

func (l *headerList) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("%q is not Name: value", s)
	}
	l.h.Add(k, strings.TrimSpace(v))
	return nil
}

func sourcesTestCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newEnvFlags("sources test", getenv, stderr)
	var base, key, bodyPath string
	hdr := &headerList{h: http.Header{}}
	f.string(&base, "url", "http://localhost:8080", "server URL")
	f.string(&key, "api-key", "", "publisher key")
	f.fs.StringVar(&bodyPath, "body", "", "the webhook's body, exactly as the provider sent it: a file, or - for stdin (required)")
	f.fs.Var(hdr, "header", "a header of the webhook, Name: value (repeatable)")
	name, err := positional(f, args, "NAME (the source's name)")
	if err != nil {
		return err
	}
	switch {
	case bodyPath == "":
		return errors.New("--body is required")
	case key == "":
		return errors.New("no key: set HOOKWIRE_API_KEY or --api-key")
	}
	var body []byte
	if bodyPath == "-" {
		body, err = io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	} else {
		body, err = os.ReadFile(bodyPath)
	}
	if err != nil {
		return fmt.Errorf("--body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/sources/"+url.PathEscape(name)+"/test", bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range hdr.h {
		req.Header[k] = vs
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// The publisher key authorizes the dry run; the webhook's own
	// Authorization, if it had one, is not sent.
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(out))
	}
	fmt.Fprintln(stdout, string(bytes.TrimSpace(out)))
	return nil
}

// newSources loads HOOKWIRE_SOURCES_FILE, refusing the start when it is
// invalid, and returns the sources (nil without a file) and their watch,
// which reloads them when the file or a secret changes.
func newSources(cfg config, logger *slog.Logger, mp metric.MeterProvider) (ingest.SourceLookup, func(ctx context.Context), error) {
	if cfg.SourcesFile == "" {
		return nil, func(context.Context) {}, nil
	}
	opts := sources.Options{Getenv: cfg.getenv, MeterProvider: mp, Logger: logger}
	set, err := sources.Load(cfg.SourcesFile, opts)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("webhook sources loaded", "path", cfg.SourcesFile, "sources", set.Names())
	reg := sources.NewRegistry(set, opts)
	watch := func(ctx context.Context) {
		reg.Watch(ctx, cfg.SourcesFile, 0, func(err error) {
			if err != nil {
				logger.Warn("sources not reloaded; the previous sources stay", "path", cfg.SourcesFile, "err", err)
				return
			}
			logger.Info("sources reloaded", "path", cfg.SourcesFile, "sources", reg.Set().Names())
		})
	}
	return reg, watch, nil
}
