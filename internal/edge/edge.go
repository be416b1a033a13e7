// Package edge builds the Echo instance a hookwire process serves every
// route on: request ids, one log line per request, panic recovery, and one
// error handler that answers every error, Echo's own 404 and 405 included,
// as application/problem+json. cmd/hookwire builds it and mounts the routes
// of ingest, subscribers and the probes on it; tests of those packages use
// it too, so that they see the answers a client sees.
package edge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/hookwire/hookwire/problem"
)

// Keys of values stored in echo.Context.
const (
	requestIDKey = "hookwire.request_id"
	publisherKey = "hookwire.publisher"
)

// maxRequestIDLen bounds an incoming X-Request-Id that is kept.
const maxRequestIDLen = 64

// New returns the Echo instance of a hookwire process, without routes.
// Every request gets, outermost first:
//
//   - an X-Request-Id: the incoming one when it is 1..64 characters of
//     [A-Za-z0-9._-], else a fresh one; it is echoed in the response, put
//     in problem bodies as request_id and in log lines;
//   - one Info log line when it completes, without query string,
//     Authorization or body (Debug for the probes and scrapes);
//   - panic recovery: a panic is logged with its stack and answered 500.
//
// Every error is answered by one error handler (see ProblemFor); the cause
// of a 5xx is logged, never shown. RealIP is the peer address
// (echo.ExtractIPDirect); set e.IPExtractor behind a trusted proxy. A nil
// logger discards.
func New(logger *slog.Logger) *echo.Echo {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = errorHandler(logger)
	e.Use(requestID, requestLogger(logger), middleware.RecoverWithConfig(middleware.RecoverConfig{
		// The panic reaches the request logger, which hands it to the
		// error handler: logged once, with its stack, answered 500.
		DisableErrorHandler: true,
		LogErrorFunc: func(_ echo.Context, err error, stack []byte) error {
			return &panicError{err: err, stack: stack}
		},
	}))
	return e
}

// SetPublisher names the publisher a route authenticated, for the request's
// log line.
func SetPublisher(c echo.Context, name string) { c.Set(publisherKey, name) }

// RequestID returns the request's X-Request-Id as set by New's middleware
// ("" outside it).
func RequestID(c echo.Context) string {
	rid, _ := c.Get(requestIDKey).(string)
	return rid
}

// requestID gives every request a safe X-Request-Id: one that is logged and
// echoed must not carry log-forging characters or unbounded length.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(rid) {
			rid = rand.Text()
		}
		c.Set(requestIDKey, rid)
		c.Request().Header.Set(echo.HeaderXRequestID, rid)
		c.Response().Header().Set(echo.HeaderXRequestID, rid)
		return next(c)
	}
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// requestLogger logs one line per request. It logs the path, never the
// query string (subscriber tokens travel in ?token=), headers or bodies.
// The cause of a 5xx is logged by the error handler, so the line carries
// the error only for client errors.
// A route that authenticated a publisher names it with SetPublisher.
//
// At a level that drops the line (warn, in load tests and many
// deployments), a request costs the logger one Enabled check: nothing is
// gathered, formatted or allocated for a line nobody reads.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				// Answered here, so that the status logged is the one
				// answered; the error handler ignores it when it
				// bubbles up (the response is committed).
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			route := c.Path()
			level := slog.LevelInfo
			switch route {
			case "/healthz", "/readyz", "/metrics":
				// Probes and scrapes arrive every few seconds:
				// logging them at info would bury everything else.
				if res.Status < 500 || route == "/readyz" {
					level = slog.LevelDebug
				}
			}
			ctx := req.Context()
			if !logger.Enabled(ctx, level) {
				return err
			}
			path := req.URL.Path
			if path == "" {
				path = "/"
			}
			attrs := make([]slog.Attr, 0, 12)
			attrs = append(attrs,
				slog.String("method", req.Method),
				slog.String("path", path),
				slog.String("route", route),
				slog.Int("status", res.Status),
				slog.Duration("latency", time.Since(start)),
				slog.String("remote_ip", c.RealIP()),
				slog.String("bytes_in", req.Header.Get(echo.HeaderContentLength)),
				slog.Int64("bytes_out", res.Size),
				slog.String("request_id", RequestID(c)),
			)
			if p, ok := c.Get(publisherKey).(string); ok {
				attrs = append(attrs, slog.String("publisher", p))
			}
			if err != nil && res.Status < 500 {
				attrs = append(attrs, slog.String("err", clientText(err)))
			}
			logger.LogAttrs(ctx, level, "request", attrs...)
			return err
		}
	}
}

// clientText is the text of err that the client was shown.
func clientText(err error) string {
	var pe *problem.Error
	if errors.As(err, &pe) {
		if pe.Details.Detail != "" {
			return pe.Details.Detail
		}
		return pe.Details.Title
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fmt.Sprint(he.Message)
	}
	return err.Error()
}

// panicError is a recovered panic.
type panicError struct {
	err   error
	stack []byte
}

func (e *panicError) Error() string { return "panic: " + e.err.Error() }
func (e *panicError) Unwrap() error { return e.err }

// errorHandler renders every error as an RFC 9457 problem and logs the
// causes of 5xx answers.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			// The answer is out (or the error bubbled up after the request
			// logger handled it): nothing can be added.
			return
		}
		p, header := ProblemFor(err)
		p.RequestID = RequestID(c)
		ctx := c.Request().Context()
		if p.Status >= 500 {
			attrs := []any{"err", err, "status", p.Status, "method", c.Request().Method,
				"path", c.Request().URL.Path, "request_id", p.RequestID}
			var pe *panicError
			if errors.As(err, &pe) {
				attrs = append(attrs, "stack", string(pe.stack))
			}
			level := slog.LevelError
			if p.Status == http.StatusServiceUnavailable {
				level = slog.LevelWarn // the broker's outage, not our bug
			}
			logger.Log(ctx, level, "request failed", attrs...)
		}

		rh := c.Response().Header()
		for k, vs := range header {
			rh.Del(k)
			for _, v := range vs {
				rh.Add(k, v) // canonicalizes k
			}
		}
		switch p.Status {
		case http.StatusUnauthorized:
			if rh.Get(echo.HeaderWWWAuthenticate) == "" {
				rh.Set(echo.HeaderWWWAuthenticate, `Bearer realm="hookwire"`)
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if rh.Get(echo.HeaderRetryAfter) == "" {
				rh.Set(echo.HeaderRetryAfter, "1")
			}
		}
		if c.Request().Method == http.MethodHead {
			rh.Set(echo.HeaderContentType, problem.ContentType)
			c.Response().WriteHeader(p.Status)
			return
		}
		problem.Write(c.Response(), p)
	}
}

// ProblemFor maps an error to the problem shown to the client and the
// headers that go with it: a *problem.Error as it is, a *echo.HTTPError by
// its status, anything else as a 500 that shows nothing of the cause.
func ProblemFor(err error) (problem.Details, http.Header) {
	var pe *problem.Error
	if errors.As(err, &pe) {
		p := pe.Details
		if p.Type == "" {
			p = problem.ForStatus(p.Status, p.Detail)
		}
		return p, pe.Header
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Code >= 500 {
			return problem.ForStatus(he.Code, ""), nil
		}
		detail, _ := he.Message.(string)
		if detail == http.StatusText(he.Code) {
			detail = "" // the title says it
		}
		if detail == "" {
			switch he.Code {
			case http.StatusNotFound:
				detail = "no such endpoint"
			case http.StatusMethodNotAllowed:
				detail = "the endpoint does not allow this method; see the Allow header"
			case http.StatusRequestEntityTooLarge:
				detail = "the body is too large"
			}
		}
		return problem.ForStatus(he.Code, detail), nil
	}
	return problem.Internal.New("the server failed to process the request; quote the request_id when reporting it"), nil
}
