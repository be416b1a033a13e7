package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/memstream"
	"github.com/hookwire/hookwire/ingest"
	"github.com/hookwire/hookwire/internal/drain"
	"github.com/hookwire/hookwire/internal/edge"
	"github.com/hookwire/hookwire/otel"
	"github.com/hookwire/hookwire/subscribers"
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
	if cfg.anyOrigin() {
		logger.Warn(`HOOKWIRE_ALLOWED_ORIGINS has "*": pages of any web site may connect with a token they hold`)
	}
	tel, err := otel.Setup(ctx, otel.Options{Getenv: cfg.getenv})
	if err != nil {
		return err
	}
	logger = logger.With("instance", tel.InstanceID())
	st, closeStream, err := openStream(ctx, cfg, tel, logger)
	if err != nil {
		return err
	}
	defer closeStream()

	// life lasts until the replica has stopped, past ctx: it owns the
	// JWKS refresh, the file watches and the hub.
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	g := new(errgroup.Group) // every goroutine of the replica
	defer func() { endLife(); g.Wait() }()
	p, err := newParts(life, g, cfg, logger, tel, st)
	if err != nil {
		return err
	}
	handler, err := routes(cfg, logger, p)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
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
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		if err := p.hub.Run(life, st); !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	})

	<-ctx.Done()
	p.draining.Begin()
	logger.Info("draining", "timeout", cfg.DrainTimeout, "connections", p.subs.Count())
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	serr := drainReplica(dctx, cfg, logger, p.subs, srv)
	endLife()
	// Closing the broker client ends the reader's blocking read now
	// rather than at its next timeout.
	closeStream()
	werr := g.Wait()
	terr := tel.Shutdown(dctx)
	logger.Info("stopped")
	return errors.Join(serr, werr, terr)
}

// parts are the pieces of one replica that routes mounts and serve runs
// and drains.
type parts struct {
	tel      *otel.Telemetry
	stream   stream
	hub      *bridge.Hub
	subs     *subscribers.Server
	ingest   *ingest.Handler
	draining *drain.State // one for the replica: the upgrade handler and /readyz read it; it turns on the instant the signal arrives
}

// newParts builds the replica's parts on st: the credentials, the hub, the
// WebSocket server and the ingest handler. The JWKS refresh lasts until
// life ends; the watches of the key and sources files run in g.
func newParts(life context.Context, g *errgroup.Group, cfg config, logger *slog.Logger, tel *otel.Telemetry, st stream) (*parts, error) {
	verifier, err := newVerifier(life, cfg, logger)
	if err != nil {
		return nil, err
	}
	keys, watchKeys, err := newKeys(cfg, logger)
	if err != nil {
		return nil, err
	}
	g.Go(func() error { watchKeys(life); return nil })
	webhooks, err := newWebhooks(cfg)
	if err != nil {
		return nil, err
	}
	mp := tel.MeterProvider()
	srcs, watchSources, err := newSources(cfg, logger, mp)
	if err != nil {
		return nil, err
	}
	g.Go(func() error { watchSources(life); return nil })

	var hotTP trace.TracerProvider // nil: the hot paths skip span bookkeeping when traces are off
	if tel.TracesEnabled() {
		hotTP = tel.TracerProvider()
	}
	p := &parts{tel: tel, stream: st, draining: new(drain.State)}
	p.hub = bridge.NewHub(st, bridge.HubOptions{
		Logger: logger, TracerProvider: hotTP, Propagator: tel.Propagator(), MeterProvider: mp, Destination: cfg.Stream,
	})
	p.subs = subscribers.New(p.hub, verifier, subscribers.Options{
		Logger:          logger,
		AllowedOrigins:  cfg.AllowedOrigins,
		PingInterval:    cfg.PingInterval,
		MaxChannels:     cfg.MaxChannels,
		MaxConnsPerUser: cfg.MaxConnsPerUser,
		FrameRate:       cfg.FrameRate,
		Head:            st.Head,
		MeterProvider:   mp,
		Drain:           p.draining,
		Tailing:         p.hub.Tailing(),
	})
	if err := p.subs.ObserveConnections(mp); err != nil {
		return nil, err
	}
	p.ingest = ingest.New(st, keys, ingest.Options{
		Sources: srcs,
		Logger:  logger, MaxBody: cfg.MaxBody, MaxBatchBody: cfg.MaxBatchBody,
		Webhooks: webhooks, PublishRate: cfg.PublishRate,
		TracerProvider: hotTP, Propagator: tel.Propagator(), MeterProvider: mp, Destination: cfg.Stream,
	})
	return p, nil
}

// newWebhooks returns the verifier of HOOKWIRE_WEBHOOK_SECRET's secrets
// (comma or space separated), or nil when none is configured.
func newWebhooks(cfg config) (*auth.WebhookVerifier, error) {
	if cfg.WebhookSecret == "" {
		return nil, nil
	}
	secrets := strings.FieldsFunc(cfg.WebhookSecret, func(r rune) bool { return r == ',' || r == ' ' })
	v, err := auth.NewWebhookVerifier(secrets, auth.WebhookOptions{})
	if err != nil {
		return nil, fmt.Errorf("HOOKWIRE_WEBHOOK_SECRET: %w", err)
	}
	return v, nil
}

// drainReplica spends the drain budget of ctx, the replica already marked
// draining (not ready, refusing upgrades): it stays up a moment so that
// balancers polling /readyz see the 503 while the listener is open; closes
// the sockets with 1001, spread over the window so that clients do not all
// reconnect at once; then stops accepting and lets in-flight POSTs finish.
func drainReplica(ctx context.Context, cfg config, logger *slog.Logger, subs *subscribers.Server, srv *http.Server) error {
	select {
	case <-time.After(min(cfg.DrainTimeout/5, 3*time.Second)):
	case <-ctx.Done():
	}
	if err := subs.Drain(ctx); err != nil {
		logger.Warn("drain budget spent, closed the remaining WebSocket connections")
	}
	subs.Close()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Browsers keep speculative connections open that never send a
		// request; Shutdown waits for them. The budget is spent: cut.
		logger.Warn("drain budget spent, closing the remaining HTTP connections")
		err = srv.Close()
	}
	return err
}

// openStream connects the broker adapter: Redis when a URL is configured,
// else the in-memory stream. The returned close is idempotent.
func openStream(ctx context.Context, cfg config, tel *otel.Telemetry, logger *slog.Logger) (stream, func() error, error) {
	if cfg.RedisURL == "" {
		st := memstream.New(memstream.Options{HistoryTTL: cfg.HistoryTTL, DedupeTTL: cfg.DedupeTTL})
		return st, func() error { return nil }, nil
	}
	return openRedis(ctx, cfg, tel, logger)
}

// routes builds the replica's HTTP handler: ingest, the WebSocket
// endpoint, the probes, the metrics and, with --dev, the demo page.
func routes(cfg config, logger *slog.Logger, p *parts) (http.Handler, error) {
	tel := p.tel
	e := edge.New(logger)
	p.ingest.Register(e)
	var err error
	if e.IPExtractor, err = ipExtractor(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	e.GET("/v1/ws", echo.WrapHandler(p.subs), upgradeLimit(cfg.UpgradeRate))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", func(c echo.Context) error {
		if p.draining.Draining() {
			return c.String(http.StatusServiceUnavailable, "draining\n")
		}
		select {
		case <-p.hub.Tailing():
		default:
			return c.String(http.StatusServiceUnavailable, "starting: not reading the stream yet\n")
		}
		rctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := p.stream.Ready(rctx); err != nil {
			return c.String(http.StatusServiceUnavailable, "broker unavailable\n")
		}
		return c.String(http.StatusOK, "ready\n")
	})
	e.GET("/metrics", echo.WrapHandler(tel.MetricsHandler()))
	if cfg.Dev {
		mountDev(e, cfg)
	}
	if !tel.TracesEnabled() {
		// otelhttp costs about 8% of an ingest request's CPU: with
		// traces off it is not in the path at all.
		return e, nil
	}
	// With traces on, otelhttp makes the server span of each ingest
	// request, continuing an incoming traceparent. WebSocket connections
	// are left out (their span would last as long as the connection), and
	// so are the probes.
	return otelhttp.NewHandler(e, "hookwire",
		// ingest records http.server.request.duration itself, with or
		// without traces.
		otelhttp.WithTracerProvider(tel.TracerProvider()), otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), otelhttp.WithPropagators(tel.Propagator()),
		otelhttp.WithFilter(func(r *http.Request) bool {
			return strings.HasPrefix(r.URL.Path, "/v1/events") || strings.HasPrefix(r.URL.Path, "/v1/sources/")
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	), nil
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
