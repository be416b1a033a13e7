// Command hookwire is the webhook-to-WebSocket event bridge: `serve` runs a
// replica; `token`, `publish` and `tail` are the small tools of the contract.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// go-redis logs every failed dial on its own; hookwire's stream
	// adapter reports outages once, through slog.
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "hookwire:", err)
		os.Exit(1)
	}
}

const usage = `hookwire — webhook-to-WebSocket event bridge

Usage:
  hookwire serve [--dev] [flags]     run a replica (see 'hookwire serve -h')
  hookwire token --sub 42 [--channels 'prices.*'] [--ttl 1h]
  hookwire publish --users 42 --type balance.updated --data '{"balance":"10.00"}'
  hookwire tail --token T [--since C] [--channels a,b]
  hookwire sources check FILE        validate a webhook sources file (HOOKWIRE_SOURCES_FILE)
  hookwire sources test NAME --body F [--header K:V]...   dry-run a webhook

Every flag has an environment variable: --jwt-secret ⇔ HOOKWIRE_JWT_SECRET.
`

// run is main without the process: tests call it with their own
// arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr, nil)
	case "token":
		return tokenCmd(args[1:], getenv, stdout, stderr)
	case "publish":
		return publishCmd(ctx, args[1:], getenv, stdout, stderr)
	case "tail":
		return tailCmd(ctx, args[1:], getenv, stdout, stderr)
	case "sources":
		return sourcesCmd(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// quietRedis drops go-redis's internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
