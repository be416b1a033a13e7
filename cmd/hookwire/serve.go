package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/memstream"
	"github.com/hookwire/hookwire/bridge/redisstream"
	"github.com/hookwire/hookwire/ingest"
	"github.com/hookwire/hookwire/otel"
	"github.com/hookwire/hookwire/subscribers"
	"github.com/hookwire/hookwire/web"
)

// stream is what serve needs of a broker adapter.
type stream interface {
	bridge.Stream
	Head(ctx context.Context) (bridge.Cursor, error)
	Ready(ctx context.Context) error
}

// serve runs one replica until ctx is cancelled, then drains. When
// listening is not nil it receives the bound address.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer, listening func(addr string)) error {
	logger := newLogger(cfg, stderr)
	if cfg.Dev {
		devDefaults(&cfg)
	}

	tel, err := otel.Setup(ctx, otel.Options{Getenv: cfg.getenv})
	if err != nil {
		return err
	}
	tp, mp, prop := tel.TracerProvider(), tel.MeterProvider(), tel.Propagator()
	// The hot paths skip span bookkeeping entirely when traces are off.
	var hotTP trace.TracerProvider
	if tel.TracesEnabled() {
		hotTP = tp
	}
	logger = logger.With("instance", tel.InstanceID())

	var st stream
	var closeStream func() error
	if cfg.RedisURL != "" {
		ropts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("HOOKWIRE_REDIS_URL: %w", err)
		}
		// Fail fast when Redis is down, so publishers get 503 and
		// retry instead of hanging; URL parameters (max_retries,
		// dial_timeout) still win.
		if ropts.MaxRetries == 0 {
			ropts.MaxRetries = 1
		}
		if ropts.DialerRetries == 0 {
			ropts.DialerRetries = 2
		}
		if ropts.DialTimeout == 0 {
			ropts.DialTimeout = 2 * time.Second
		}
		// CLIENT SETINFO fails on Redis before 7.2 and would show as
		// an error span on every new connection.
		ropts.DisableIdentity = true
		rdb := redis.NewClient(ropts)
		closeStream = sync.OnceValue(rdb.Close)
		if err := tel.InstrumentRedis(rdb); err != nil {
			return err
		}
		rs := redisstream.New(rdb, redisstream.Options{
			Prefix: cfg.Stream, HistoryTTL: cfg.HistoryTTL, DedupeTTL: cfg.DedupeTTL, Logger: logger,
		})
		if err := observeLag(mp, rs.Lag); err != nil {
			return err
		}
		st = rs
	} else {
		st = memstream.New(memstream.Options{HistoryTTL: cfg.HistoryTTL, DedupeTTL: cfg.DedupeTTL})
		closeStream = func() error { return nil }
	}
	defer closeStream()

	// life lasts until the replica stops: it owns the JWKS refresh and the
	// key-file watch.
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	verifier, err := newVerifier(life, cfg, logger)
	if err != nil {
		return err
	}
	keys, err := newKeys(life, cfg, logger)
	if err != nil {
		return err
	}
	var webhooks *auth.WebhookVerifier
	if cfg.WebhookSecret != "" {
		if webhooks, err = auth.NewWebhookVerifier(strings.FieldsFunc(cfg.WebhookSecret, func(r rune) bool { return r == ',' || r == ' ' }), auth.WebhookOptions{}); err != nil {
			return fmt.Errorf("HOOKWIRE_WEBHOOK_SECRET: %w", err)
		}
	}

	hub := bridge.NewHub(st, bridge.HubOptions{
		Logger: logger, TracerProvider: hotTP, Propagator: prop, MeterProvider: mp, Destination: cfg.Stream,
	})
	subs := subscribers.New(hub, verifier, subscribers.Options{
		Logger:          logger,
		AllowedOrigins:  cfg.AllowedOrigins,
		PingInterval:    cfg.PingInterval,
		MaxChannels:     cfg.MaxChannels,
		MaxConnsPerUser: cfg.MaxConnsPerUser,
		FrameRate:       cfg.FrameRate,
		Head:            st.Head,
		MeterProvider:   mp,
	})
	if err := subs.ObserveConnections(mp); err != nil {
		return err
	}
	ih := ingest.New(st, keys, ingest.Options{
		Logger: logger, MaxBody: cfg.MaxBody, MaxBatchBody: cfg.MaxBatchBody,
		Webhooks: webhooks, PublishRate: cfg.PublishRate,
		TracerProvider: hotTP, Propagator: prop, MeterProvider: mp, Destination: cfg.Stream,
	})
	e := ingest.NewEcho(ih, logger)

	var draining atomic.Bool
	if e.IPExtractor, err = ipExtractor(cfg.TrustedProxies); err != nil {
		return err
	}
	e.GET("/v1/ws", echo.WrapHandler(subs), upgradeLimit(cfg.UpgradeRate))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", func(c echo.Context) error {
		if draining.Load() {
			return c.String(http.StatusServiceUnavailable, "draining\n")
		}
		rctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := st.Ready(rctx); err != nil {
			return c.String(http.StatusServiceUnavailable, "broker unavailable\n")
		}
		return c.String(http.StatusOK, "ready\n")
	})
	e.GET("/metrics", echo.WrapHandler(tel.MetricsHandler()))
	if cfg.Dev {
		mountDev(e, cfg)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	// With traces on, otelhttp makes the server span of each ingest
	// request, continuing an incoming traceparent. WebSocket connections
	// are left out (their span would last as long as the connection), and
	// so are the probes. With traces off it is not in the path at all: it
	// costs about 8% of an ingest request's CPU.
	var handler http.Handler = e
	if tel.TracesEnabled() {
		handler = otelhttp.NewHandler(e, "hookwire",
			// ingest records http.server.request.duration itself,
			// with or without traces.
			otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), otelhttp.WithPropagators(prop),
			otelhttp.WithFilter(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v1/events") }),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
		)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	logger.Info("hookwire listening", "addr", addr, "broker", brokerName(cfg), "dev", cfg.Dev)
	if cfg.Dev {
		printDev(stdout, cfg, addr)
	}
	if listening != nil {
		listening(addr)
	}

	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	g := new(errgroup.Group)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		if err := hub.Run(hubCtx, st); !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	})

	<-ctx.Done()
	// Drain, within the budget: report not ready and refuse new
	// upgrades at once, while the listener stays open so balancers can
	// see the 503; close sockets with 1001 spread over the window, so
	// clients do not all reconnect at the same moment; then stop
	// accepting and let in-flight POSTs finish; then stop reading.
	logger.Info("draining", "timeout", cfg.DrainTimeout, "connections", subs.Count())
	draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	// Stay up, not ready, for a moment even with nothing to drain, so that
	// balancers polling /readyz see the 503 before the listener goes.
	select {
	case <-time.After(min(cfg.DrainTimeout/5, 3*time.Second)):
	case <-dctx.Done():
	}
	if err := subs.Drain(dctx); err != nil {
		logger.Warn("drain budget spent, closed the remaining WebSocket connections")
	}
	serr := srv.Shutdown(dctx)
	if errors.Is(serr, context.DeadlineExceeded) {
		// Browsers keep speculative connections open that never send a
		// request; Shutdown waits for them. The budget is spent: cut.
		logger.Warn("drain budget spent, closing the remaining HTTP connections")
		serr = srv.Close()
	}
	stopHub()
	// Closing the broker client ends the reader's blocking read now
	// rather than at its next timeout.
	closeStream()
	werr := g.Wait()
	terr := tel.Shutdown(dctx)
	logger.Info("stopped")
	return errors.Join(serr, werr, terr)
}

func brokerName(cfg config) string {
	if cfg.RedisURL != "" {
		return "redis"
	}
	return "memory"
}

// newLogger returns the process's logger: JSON in production, text with
// --dev, with trace and span ids on lines logged in a traced context.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Dev {
		return slog.New(otel.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(otel.LogHandler(slog.NewJSONHandler(w, opts)))
}

// devDefaults fills in what --dev generates: secrets and a permissive Origin.
func devDefaults(cfg *config) {
	if len(cfg.APIKeys) == 0 && cfg.APIKeysFile == "" {
		cfg.APIKeys = []string{"hw_dev_" + strings.ToLower(rand.Text())}
	}
	if cfg.JWTSecret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		cfg.JWTSecret = hex.EncodeToString(b)
	}
	if cfg.WebhookSecret == "" {
		cfg.WebhookSecret = auth.NewWebhookSecret()
	}
	if len(cfg.AllowedOrigins) == 0 {
		cfg.AllowedOrigins = []string{"*"}
	}
}

const demoUser = "demo"

func devToken(cfg config, ttl time.Duration) string {
	tok, err := auth.SignWith([]byte(cfg.JWTSecret), auth.Claims{
		Subject: demoUser, Channels: []string{"*"}, Expiry: time.Now().Add(ttl),
	}, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		panic(err) // HS256 with a non-empty key cannot fail
	}
	return tok
}

func curlLine(cfg config, base string) string {
	return fmt.Sprintf(`curl -i %s/v1/events -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"type":"balance.updated","users":["%s"],"data":{"balance":"10.00"}}'`,
		base, devKey(cfg), demoUser)
}

// devKey is the key the dev banner shows: the first configured one, in the
// plain "key" form, or a placeholder when keys come from a file.
func devKey(cfg config) string {
	if len(cfg.APIKeys) == 0 {
		return "<a key from HOOKWIRE_API_KEYS_FILE>"
	}
	k := cfg.APIKeys[0]
	if parts := strings.SplitN(k, ":", 3); len(parts) >= 2 {
		k = parts[1] // name:key[:scope]
	}
	return k
}

func baseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// mountDev serves the demo page and a token endpoint for it.
func mountDev(e *echo.Echo, cfg config) {
	// Echo's static handler answers missing files with its 404, which
	// the error handler renders as problem+json like every other error.
	e.StaticFS("/", web.Assets())
	e.GET("/dev/token", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{
			"token": devToken(cfg, time.Hour),
			"user":  demoUser,
			"curl":  curlLine(cfg, "http://"+c.Request().Host),
		})
	})
}

func printDev(w io.Writer, cfg config, addr string) {
	base := baseURL(addr)
	fmt.Fprintf(w, `
hookwire is running in development mode (%s broker). These secrets are generated for this run:

  HOOKWIRE_API_KEYS=%s
  HOOKWIRE_JWT_SECRET=%s
  HOOKWIRE_WEBHOOK_SECRET=%s

Demo page (connects as user %q):  %s/
Subscriber token for user %q (24h): %s

Post a balance update:
  %s

Watch it arrive:
  go run ./cmd/hookwire tail --url %s --token %s

`, brokerName(cfg), strings.Join(cfg.APIKeys, ","), cfg.JWTSecret, cfg.WebhookSecret, demoUser, base, demoUser,
		devToken(cfg, 24*time.Hour), curlLine(cfg, base), base, devToken(cfg, 24*time.Hour))
}
