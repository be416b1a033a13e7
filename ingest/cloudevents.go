package ingest

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/ingest/cloudevent"
	"github.com/hookwire/hookwire/problem"
)

// CloudEvents on the ingest routes (CONTRACT.md §7): POST /v1/events takes
// a structured or binary CloudEvent, POST /v1/events/batch a batch of
// them. postEvent and postBatch hand such requests here.

// ceBody is authenticatedBody for CloudEvents, whose media types are not
// application/json.
func (h *Handler) ceBody(c echo.Context, limit int64) (caller, []byte, error) {
	return h.authenticatedWith(c, limit, readRawBody)
}

// ceProblem renders a CloudEvent's refusal (a *cloudevent.Error, 400 or
// 415) as problem details, naming the attribute.
func ceProblem(err error) error {
	var ce *cloudevent.Error
	if !errors.As(err, &ce) {
		return err
	}
	if ce.Status == http.StatusUnsupportedMediaType {
		return problem.Wrap(problem.UnsupportedMediaType.New(ce.Reason), nil)
	}
	p := problem.InvalidEvent.New("invalid CloudEvent: " + ce.Error())
	if ce.Attribute != "" {
		p.Errors = []problem.FieldError{{Field: ce.Attribute, Reason: ce.Reason}}
	}
	return problem.Wrap(p, nil)
}

// admitCloudEvent is admit for a decoded CloudEvent: the hookwire event
// through admitDecoded, its validation errors naming the CloudEvents
// attribute.
func (h *Handler) admitCloudEvent(who caller, ce *cloudevent.Event) (*bridge.Event, error) {
	ev := ce.Bridge()
	ev.Source = ce.Source
	if err := admitDecoded(who, ev, func(err error) error {
		var ve *bridge.ValidationError
		if !errors.As(err, &ve) {
			return invalid(err)
		}
		attr, reason := ve.Field, ve.Reason
		switch {
		case attr == "users" && len(ev.Users) == 0 && ev.Channel == "":
			attr, reason = cloudevent.AttrUsers, "a CloudEvent is addressed by hookwireusers (comma-separated user ids), hookwirechannel, or both"
		case strings.HasPrefix(attr, "users"):
			attr = cloudevent.AttrUsers
		case attr == "channel":
			attr = cloudevent.AttrChannel
		}
		return ceProblem(&cloudevent.Error{Status: http.StatusBadRequest, Attribute: attr, Reason: reason})
	}); err != nil {
		return nil, err
	}
	return ev, nil
}

// postCloudEvent is postEvent for a structured or binary CloudEvent.
func (h *Handler) postCloudEvent(c echo.Context) error {
	who, body, err := h.ceBody(c, h.maxBody)
	if err != nil {
		return err
	}
	ce, err := cloudevent.Decode(c.Request().Header, body)
	if err != nil {
		return ceProblem(err)
	}
	ev, err := h.admitCloudEvent(who, ce)
	if err != nil {
		return err
	}
	return h.answerOne(c, who, ev)
}

// postCloudEventBatch is postBatch for application/cloudevents-batch+json:
// one result per event, in order.
func (h *Handler) postCloudEventBatch(c echo.Context) error {
	who, body, err := h.ceBody(c, h.maxBatchBody)
	if err != nil {
		return err
	}
	if err := cloudevent.CheckBatch(c.Request().Header); err != nil {
		return ceProblem(err)
	}
	raws, err := cloudevent.DecodeBatch(body)
	if err != nil {
		return ceProblem(err)
	}
	return h.answerBatch(c, who, len(raws), func(i int) (*bridge.Event, error) {
		raw := raws[i]
		if int64(len(raw)) > h.maxBody {
			return nil, tooLarge(h.maxBody)
		}
		ce, err := cloudevent.DecodeStructured(raw)
		if err != nil {
			return nil, ceProblem(err)
		}
		return h.admitCloudEvent(who, ce)
	})
}
