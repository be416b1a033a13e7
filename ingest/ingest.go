// Package ingest is hookwire's ingest API: the Echo handlers of
// POST /v1/events and POST /v1/events/batch, which authenticate publishers,
// run each event through one admit step (decode strictly, validate, check
// the publisher's scope, prepare) and append it to the stream; and Accept,
// the same path for routes that decode events themselves. Register mounts
// the routes on the process's Echo instance (internal/edge, built by
// cmd/hookwire), whose error handler renders the problems they return.
//
// It imports bridge and auth; it never imports subscribers, go-redis or
// gorilla: the stream comes in as a small interface.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/ingest/cloudevent"
	"github.com/hookwire/hookwire/internal/edge"
	"github.com/hookwire/hookwire/problem"
)

// appender is the part of bridge.Stream the ingest API uses.
type appender interface {
	Append(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error)
}

// Defaults of Options.
const (
	DefaultMaxBody       = 64 << 10 // the contract's 64 KiB
	DefaultMaxBatchBody  = 4 << 20
	DefaultAppendTimeout = 5 * time.Second
)

// Options configure a Handler. Zero values mean the defaults.
type Options struct {
	// Logger receives one debug line per accepted event; nil discards.
	Logger *slog.Logger
	// MaxBody is the largest single-event body, in bytes.
	MaxBody int64
	// MaxBatchBody is the largest batch body, in bytes. Each event in a
	// batch must still be at most MaxBody bytes of JSON.
	MaxBatchBody int64
	// AppendTimeout bounds one Append: past it the request gets a 503.
	AppendTimeout time.Duration
	// TracerProvider traces each event's append ("send" spans); nil
	// means none.
	TracerProvider trace.TracerProvider
	// Propagator injects each send span's context into its event
	// (default W3C trace context).
	Propagator propagation.TextMapPropagator
	// MeterProvider counts accepted and rejected events; nil means none.
	MeterProvider metric.MeterProvider
	// Destination names the stream in spans (default "hookwire").
	Destination string
	// Webhooks, when set, accepts Standard Webhooks signed requests.
	Webhooks webhookVerifier
	// PublishRate limits each publisher to this many events per second
	// (0: unlimited), with bursts of PublishBurst (default: the rate,
	// and at least 1).
	PublishRate  float64
	PublishBurst int
	// Sources are the webhook sources served at /v1/sources/<name>;
	// nil means none (every name is a 404).
	Sources SourceLookup
}

// Handler serves the ingest routes. It is safe for concurrent use.
type Handler struct {
	stream        appender
	keys          keyChecker
	log           *slog.Logger
	maxBody       int64
	maxBatchBody  int64
	appendTimeout time.Duration
	tel           telemetry
	webhooks      webhookVerifier
	limits        *limiters
	sources       SourceLookup
}

// New returns a Handler appending to s and accepting the API keys of keys
// (none when keys is nil).
func New(s appender, keys keyChecker, opts Options) *Handler {
	h := &Handler{
		stream:        s,
		keys:          keys,
		log:           opts.Logger,
		maxBody:       opts.MaxBody,
		maxBatchBody:  opts.MaxBatchBody,
		appendTimeout: opts.AppendTimeout,
		tel:           newTelemetry(opts),
		webhooks:      opts.Webhooks,
		sources:       opts.Sources,
	}
	if opts.PublishRate > 0 {
		h.limits = newLimiters(opts.PublishRate, opts.PublishBurst)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.maxBatchBody <= 0 {
		h.maxBatchBody = DefaultMaxBatchBody
	}
	if h.appendTimeout <= 0 {
		h.appendTimeout = DefaultAppendTimeout
	}
	return h
}

// Register mounts POST /v1/events and POST /v1/events/batch (which also
// take CloudEvents, cloudevents.go), and the webhook sources' routes
// (sources.go), on e, an instance of edge.New.
func (h *Handler) Register(e *echo.Echo) {
	e.POST("/v1/events", h.postEvent, h.observe)
	e.POST("/v1/events/batch", h.postBatch, h.observe)
	h.registerSources(e, h.sources)
}

// observe records the ingest metrics of one request: its duration, and the
// problem it was refused with. It has the error handled at once, so that
// the status it records is the one answered.
func (h *Handler) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		ctx := c.Request().Context()
		if err != nil {
			p, _ := edge.ProblemFor(err)
			h.tel.reject(ctx, p)
			c.Error(err)
		}
		h.tel.observe(ctx, c.Request().Method, c.Path(), c.Response().Status, time.Since(start))
		return err // for the request log line; the answer is out
	}
}

// accepted is the answer for an appended (202) or duplicate (200) event.
type accepted struct {
	ID        string `json:"id"`
	Cursor    string `json:"cursor"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

func (h *Handler) postEvent(c echo.Context) error {
	if cloudevent.DetectMode(c.Request().Header) != cloudevent.None {
		return h.postCloudEvent(c)
	}
	who, body, err := h.authenticatedBody(c, h.maxBody)
	if err != nil {
		return err
	}
	ev, err := h.admit(who, body, alone)
	if err != nil {
		return err
	}
	return h.answerOne(c, who, ev)
}

// answerOne appends one admitted event and answers 202 with its id and
// cursor, or 200 when it is a duplicate.
func (h *Handler) answerOne(c echo.Context, who caller, ev *bridge.Event) error {
	ctx := c.Request().Context()
	res, err := h.take(ctx, who.pub.Name, []*bridge.Event{ev})
	if err != nil {
		return err
	}
	h.logAccepted(ctx, c, ev, res[0], who.pub.Name)
	a := accepted{ID: ev.ID, Cursor: res[0].Cursor.String(), Duplicate: res[0].Duplicate}
	if a.Duplicate {
		return c.JSON(http.StatusOK, a)
	}
	return c.JSON(http.StatusAccepted, a)
}

// authenticatedBody authenticates the request and reads its JSON body
// (readBody); see authenticatedWith.
func (h *Handler) authenticatedBody(c echo.Context, limit int64) (caller, []byte, error) {
	return h.authenticatedWith(c, limit, readBody)
}

// authenticatedWith authenticates the request and reads its body with
// read: an API key is checked before the body is read, so that a request
// without credentials is refused first; a Standard Webhooks signature
// covers the raw body, so it is checked after.
func (h *Handler) authenticatedWith(c echo.Context, limit int64, read func(echo.Context, int64) ([]byte, error)) (caller, []byte, error) {
	r := c.Request()
	if signed(r) {
		body, err := read(c, limit)
		if err != nil {
			return caller{}, nil, err
		}
		who, err := h.verifySignature(r, body)
		if err == nil {
			edge.SetPublisher(c, who.pub.Name)
		}
		return who, body, err
	}
	who, err := h.authenticate(c)
	if err != nil {
		return caller{}, nil, err
	}
	body, err := read(c, limit)
	return who, body, err
}

// batchResult is one event's outcome in a batch answer: Status 202 or 200
// with ID and Cursor (and Duplicate), or 400 or 413 with Error.
type batchResult struct {
	Status    int              `json:"status"`
	ID        string           `json:"id,omitempty"`
	Cursor    string           `json:"cursor,omitempty"`
	Duplicate bool             `json:"duplicate,omitempty"`
	Error     *problem.Details `json:"error,omitempty"`
}

// postBatch validates each event on its own and appends the valid ones in
// one Append call, so a batch costs one broker round trip. It answers 200
// with one result per event in request order whenever the batch itself was
// well-formed and the append succeeded (or there was nothing to append);
// each result carries the status that event would have had alone. A failed
// Append fails the whole request (503), as no result could be relied on.
func (h *Handler) postBatch(c echo.Context) error {
	if cloudevent.DetectMode(c.Request().Header) == cloudevent.Batch {
		return h.postCloudEventBatch(c)
	}
	who, body, err := h.authenticatedBody(c, h.maxBatchBody)
	if err != nil {
		return err
	}
	raws, err := decodeBatch(body)
	if err != nil {
		return invalid(err)
	}

	return h.answerBatch(c, who, len(raws), func(i int) (*bridge.Event, error) {
		return h.admit(who, raws[i], i)
	})
}

// answerBatch admits the n events of a batch with admitOne, appends the
// admitted ones in one Append and answers one result per event, in order:
// each carries the status that event would have had alone. A failed
// Append fails the whole request (503), as no result could be relied on.
func (h *Handler) answerBatch(c echo.Context, who caller, n int, admitOne func(i int) (*bridge.Event, error)) error {
	ctx := c.Request().Context()
	results := make([]batchResult, n)
	evs := make([]*bridge.Event, 0, n)
	index := make([]int, 0, n) // evs[j] is the event of results[index[j]]
	for i := range n {
		ev, err := admitOne(i)
		if err != nil {
			p, _ := edge.ProblemFor(err)
			h.tel.reject(ctx, p)
			results[i] = batchResult{Status: p.Status, Error: &p}
			continue
		}
		evs = append(evs, ev)
		index = append(index, i)
	}
	if len(evs) > 0 {
		res, err := h.take(ctx, who.pub.Name, evs)
		if err != nil {
			return err
		}
		for j, r := range res {
			ev := evs[j]
			h.logAccepted(ctx, c, ev, r, who.pub.Name)
			status := http.StatusAccepted
			if r.Duplicate {
				status = http.StatusOK
			}
			results[index[j]] = batchResult{Status: status, ID: ev.ID, Cursor: r.Cursor.String(), Duplicate: r.Duplicate}
		}
	}
	return c.JSON(http.StatusOK, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// alone is the batch index of an event posted on its own.
const alone = -1

// admit is the one step every posted JSON event goes through, alone or in
// a batch: decode (strictly; in a batch each event is at most maxBody
// bytes of JSON), then admitDecoded. index is the event's position in its
// batch, or alone. Its errors are problems: 400, 403 or 413.
func (h *Handler) admit(who caller, raw []byte, index int) (*bridge.Event, error) {
	decode := decodeEvent
	if index != alone {
		if int64(len(raw)) > h.maxBody {
			return nil, problem.Wrap(problem.PayloadTooLarge.New(fmt.Sprintf("the event is %d bytes of JSON; the limit is %d", len(raw), h.maxBody)), nil)
		}
		decode = decodeEventUTF8 // decodeBatch checked UTF-8
	}
	ev, err := decode(raw)
	if err != nil {
		return nil, invalid(err)
	}
	if ev.ID == "" && who.webhookID != "" {
		ev.ID = webhookEventID(who.webhookID, index)
	}
	if err := admitDecoded(who, ev, invalid); err != nil {
		return nil, err
	}
	return ev, nil
}

// admitDecoded is what every event goes through once decoded, whichever
// route decoded it (JSON, CloudEvents, a webhook source): validate, check
// who's scope (403), and prepare (an id, users deduplicated). shape turns
// a validation error into the route's 400 problem.
func admitDecoded(who caller, ev *bridge.Event, shape func(error) error) error {
	if err := ev.Validate(); err != nil {
		return shape(err)
	}
	if err := scope(who, ev); err != nil {
		return err
	}
	prepare(ev)
	return nil
}

// take spends publisher's rate for evs and appends them.
func (h *Handler) take(ctx context.Context, publisher string, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	if err := h.limits.take(publisher, len(evs)); err != nil {
		return nil, err
	}
	return h.append(ctx, evs)
}

// Accept is the path of events that other routes decoded themselves (the
// webhook sources): each event is validated and checked against pub's
// scope, given an id when it has none, and then all are appended together
// within pub's publish rate. An invalid or out-of-scope event fails the
// whole call, before anything is appended. Errors are *problem.Error
// (400, 403, 429, 503) or an internal error that renders as 500; the
// results are in the order of evs. Accept records the ingest metrics and
// spans of what it appends.
func (h *Handler) Accept(ctx context.Context, pub auth.Publisher, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	who := caller{pub: pub}
	for i, ev := range evs {
		if err := admitDecoded(who, ev, invalid); err != nil {
			if len(evs) > 1 {
				var pe *problem.Error
				if errors.As(err, &pe) {
					pe.Details.Detail = fmt.Sprintf("event %d: %s", i, pe.Details.Detail)
				}
			}
			p, _ := edge.ProblemFor(err)
			h.tel.reject(ctx, p)
			return nil, err
		}
	}
	if len(evs) == 0 {
		return nil, nil
	}
	res, err := h.take(ctx, pub.Name, evs)
	if err != nil {
		var pe *problem.Error
		if errors.As(err, &pe) {
			h.tel.reject(ctx, pe.Details)
		}
	}
	return res, err
}

// authenticate returns the publisher of the request, or an error that
// renders as 401. It checks the headers only, so that a request without
// credentials is refused before its body is read. Standard Webhooks
// signatures, which cover the body, belong in a second step after
// readBody, taken when the request carries webhook-* headers instead of
// Authorization.
func (h *Handler) authenticate(c echo.Context) (caller, error) {
	authz := c.Request().Header.Get(echo.HeaderAuthorization)
	if authz == "" {
		return caller{}, unauthorized("missing credentials: send Authorization: Bearer <API key>, or sign the request (Standard Webhooks)", `Bearer realm="hookwire"`)
	}
	scheme, key, _ := strings.Cut(authz, " ")
	key = strings.TrimLeft(key, " ")
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		return caller{}, unauthorized("the Authorization header must be Bearer <API key>", `Bearer realm="hookwire", error="invalid_request"`)
	}
	if h.keys != nil {
		if pub, ok := h.keys.Publisher(key); ok {
			edge.SetPublisher(c, pub.Name) // for the request log line
			return caller{pub: pub}, nil
		}
	}
	return caller{}, unauthorized("unknown API key", `Bearer realm="hookwire", error="invalid_token"`)
}

// unauthorized returns a 401 with its WWW-Authenticate challenge.
func unauthorized(detail, challenge string) error {
	e := problem.Wrap(problem.Unauthorized.New(detail), nil)
	e.Header = http.Header{}
	e.Header.Set(echo.HeaderWWWAuthenticate, challenge)
	return e
}

// readBody checks the request's media type and reads its body, refusing
// one larger than limit before or while reading it.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	if err := checkMediaType(c.Request().Header); err != nil {
		return nil, err
	}
	return readLimited(c, limit)
}

// readLimited reads the request's body, refusing one larger than limit
// before or while reading it.
func readLimited(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// Room for the body and for ReadFrom's last read, which finds
		// the end: one allocation, where Grow(ContentLength) alone
		// makes ReadFrom grow (and copy) the buffer once more.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	// MaxBytesReader also makes the server close the connection rather
	// than drain an oversized body.
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Response().Writer, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return buf.Bytes(), nil
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
		return nil, fmt.Errorf("read body: %w", err) // an outer BodyLimit
	}
	return nil, problem.Wrap(problem.BadRequest.New("the body could not be read"), err)
}

func tooLarge(limit int64) error {
	return problem.Wrap(problem.PayloadTooLarge.New(fmt.Sprintf("the body is larger than %d bytes", limit)), nil)
}

// checkMediaType accepts application/json with any parameters (charset)
// and no content coding.
func checkMediaType(hdr http.Header) error {
	if enc := hdr.Get(echo.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return problem.Wrap(problem.UnsupportedMediaType.New("content codings are not supported; send the body uncompressed"), nil)
	}
	ct := hdr.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return problem.Wrap(problem.UnsupportedMediaType.New("the body must be Content-Type: application/json"), nil)
	}
	return nil
}

// invalid turns a decoding or validation error into a 400.
func invalid(err error) error {
	return problem.Wrap(invalidDetails(err), nil)
}

func invalidDetails(err error) problem.Details {
	var ve *bridge.ValidationError
	if !errors.As(err, &ve) {
		return problem.InvalidEvent.New(err.Error())
	}
	if ve.Field == "" {
		return problem.InvalidEvent.New(ve.Reason)
	}
	p := problem.InvalidEvent.New(ve.Error())
	p.Errors = []problem.FieldError{{Field: ve.Field, Reason: ve.Reason}}
	return p
}

// prepare readies a valid event for appending.
func prepare(ev *bridge.Event) {
	dedupeUsers(ev)
	ev.AssignID()
}

// append appends evs within the append timeout. Its errors render as 503
// (with Retry-After) when the broker is unavailable or too slow, else 500.
func (h *Handler) append(ctx context.Context, evs []*bridge.Event) ([]bridge.AppendResult, error) {
	ctx, cancel := context.WithTimeout(ctx, h.appendTimeout)
	defer cancel()
	spans := h.tel.startSend(ctx, evs)
	actx := ctx
	if len(spans) == 1 {
		// One event: its Redis command nests under its send span.
		actx = trace.ContextWithSpan(ctx, spans[0])
	}
	res, err := h.stream.Append(actx, evs)
	h.tel.endSend(ctx, spans, res, err)
	switch {
	case errors.Is(err, bridge.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return nil, problem.Wrap(problem.BrokerUnavailable.New("the event could not be stored and was not accepted; retry later"), fmt.Errorf("append: %w", err))
	case err != nil:
		return nil, fmt.Errorf("append: %w", err)
	case len(res) != len(evs):
		return nil, fmt.Errorf("append: %d results for %d events", len(res), len(evs))
	}
	return res, nil
}

func (h *Handler) logAccepted(ctx context.Context, c echo.Context, ev *bridge.Event, r bridge.AppendResult, publisher string) {
	if !h.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	msg := "event accepted"
	if r.Duplicate {
		msg = "duplicate event"
	}
	h.log.DebugContext(ctx, msg,
		"event_id", ev.ID, "cursor", r.Cursor.String(), "type", ev.Type,
		"users", len(ev.Users), "channel", ev.Channel,
		"publisher", publisher, "request_id", edge.RequestID(c))
}
