package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/internal/edge"
	"github.com/hookwire/hookwire/internal/jsonobj"
	"github.com/hookwire/hookwire/problem"
	"github.com/hookwire/hookwire/sources"
)

// SourceLookup finds a webhook source by name. sources.Registry (which
// reloads the sources file) and sources.Set implement it.
type SourceLookup interface {
	Lookup(name string) (*sources.Source, bool)
}

// registerSources mounts the webhook sources of CONTRACT.md §6 on e
// (reg nil: none, every name answers 404):
// POST /v1/sources/:name, verified with the source's scheme and turned
// into events by its rules, and POST /v1/sources/:name/test, the dry run
// for publishers. Events go through Accept, with the source as their
// publisher ("source:<name>", unscoped, with the publish rate of any
// publisher), and carry the source's name as their source.
func (h *Handler) registerSources(e *echo.Echo, reg SourceLookup) {
	s := &sourceRoutes{h: h, reg: reg, now: time.Now}
	e.POST("/v1/sources/:name", s.post, h.observe)
	e.POST("/v1/sources/:name/test", s.test, h.observe)
}

type sourceRoutes struct {
	h   *Handler
	reg SourceLookup
	now func() time.Time
}

// sourceEvent is one event's outcome in a source's answer.
type sourceEvent struct {
	ID        string `json:"id"`
	Cursor    string `json:"cursor"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

func (s *sourceRoutes) lookup(c echo.Context) (*sources.Source, error) {
	name := c.Param("name")
	if s.reg == nil {
		return nil, problem.Wrap(problem.NotFound.New("no webhook sources are configured on this server (HOOKWIRE_SOURCES_FILE)"), nil)
	}
	src, ok := s.reg.Lookup(name)
	if !ok {
		return nil, problem.Wrap(problem.NotFound.New(fmt.Sprintf("no webhook source %q is configured (HOOKWIRE_SOURCES_FILE)", jsonobj.Bound(name, 64))), nil)
	}
	return src, nil
}

// post answers a provider's webhook: 401 when the signature does not
// verify, 200 with the challenge for a signed Slack url_verification, 200
// ignored when no rule made an event, else the events appended: 202, or
// 200 when every one is a duplicate (a redelivery).
func (s *sourceRoutes) post(c echo.Context) error {
	src, err := s.lookup(c)
	if err != nil {
		return err
	}
	r := c.Request()
	body, err := readRawBody(c, s.h.maxBody)
	if err != nil {
		return err
	}
	d, err := src.Verify(r.Context(), r.Header, body, s.now())
	switch {
	case errors.Is(err, sources.ErrUnverified):
		// The rejection's text names no secret and no expected value.
		return unauthorized(err.Error(), `Signature realm="hookwire"`)
	case err != nil:
		return problem.Wrap(problem.InvalidEvent.New(err.Error()), nil)
	}
	pub := auth.Publisher{Name: "source:" + src.Name()}
	edge.SetPublisher(c, pub.Name)
	if d.Challenge != "" {
		return c.JSON(http.StatusOK, struct {
			Challenge string `json:"challenge"`
		}{d.Challenge})
	}
	evs, _ := src.Events(r.Context(), d) // the rules' errors are counted and logged
	if len(evs) == 0 {
		return c.JSON(http.StatusOK, struct {
			Events  []sourceEvent `json:"events"`
			Ignored bool          `json:"ignored"`
		}{[]sourceEvent{}, true})
	}
	for _, ev := range evs {
		ev.Source = src.Name()
	}
	ctx := r.Context()
	res, err := s.h.Accept(ctx, pub, evs)
	if err != nil {
		return err
	}
	out := make([]sourceEvent, len(evs))
	dups := 0
	for i, ev := range evs {
		s.h.logAccepted(ctx, c, ev, res[i], pub.Name)
		out[i] = sourceEvent{ID: ev.ID, Cursor: res[i].Cursor.String(), Duplicate: res[i].Duplicate}
		if res[i].Duplicate {
			dups++
		}
	}
	status := http.StatusAccepted
	if dups == len(evs) {
		status = http.StatusOK
	}
	return c.JSON(status, struct {
		Events []sourceEvent `json:"events"`
	}{out})
}

// test is the dry run: a publisher key, then the webhook as the provider
// sends it; nothing is appended.
func (s *sourceRoutes) test(c echo.Context) error {
	if _, err := s.h.authenticate(c); err != nil {
		return err
	}
	src, err := s.lookup(c)
	if err != nil {
		return err
	}
	body, err := readRawBody(c, s.h.maxBody)
	if err != nil {
		return err
	}
	// The dry run's own Authorization is not part of the webhook.
	hdr := c.Request().Header.Clone()
	hdr.Del(echo.HeaderAuthorization)
	return c.JSON(http.StatusOK, src.DryRun(hdr, body, s.now()))
}

// readRawBody reads a body of any media type (a provider's signature
// covers the bytes, whatever it calls them), refusing a content coding
// and a body larger than limit.
func readRawBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if enc := r.Header.Get(echo.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil, problem.Wrap(problem.UnsupportedMediaType.New("content codings are not supported; send the body uncompressed"), nil)
	}
	return readLimited(c, limit)
}
