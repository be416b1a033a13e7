// Package problem renders RFC 9457 problem details
// (application/problem+json), the body of every HTTP error hookwire
// answers: ingest errors and the WebSocket endpoint's refusals before the
// upgrade. It imports no other hookwire package and no web framework.
//
// Problem types. Each type URI names one kind of problem, always with the
// same status and title; detail says what went wrong this time.
//
//	https://hookwire.dev/problems/bad-request             400 Bad request: a malformed request that is not an event body (a query parameter, a cursor)
//	https://hookwire.dev/problems/invalid-event           400 Invalid event: the body is not one JSON object, a field is unknown or of the wrong type, a value breaks the contract's limits, or a batch is not 1..1000 events; errors names the fields
//	https://hookwire.dev/problems/unauthorized            401 Unauthorized: missing, malformed or unknown credentials (API key, webhook signature, subscriber token)
//	https://hookwire.dev/problems/forbidden               403 Forbidden: the credentials are valid but not for this (a disallowed Origin, a channel outside the token's claims)
//	https://hookwire.dev/problems/not-found               404 Not found: no such endpoint
//	https://hookwire.dev/problems/method-not-allowed      405 Method not allowed: the endpoint exists; the Allow header lists its methods
//	https://hookwire.dev/problems/payload-too-large       413 Payload too large: the body (or one event of a batch) exceeds the configured limit
//	https://hookwire.dev/problems/unsupported-media-type  415 Unsupported media type: the body is not Content-Type application/json, or has a Content-Encoding
//	https://hookwire.dev/problems/rate-limited            429 Rate limited: too many requests; retry after Retry-After seconds
//	https://hookwire.dev/problems/internal                500 Internal server error: a bug; the request id in the body finds it in the logs
//	https://hookwire.dev/problems/broker-unavailable      503 Broker unavailable: the event could not be appended (the broker is unreachable or too slow); nothing was accepted; retry after Retry-After seconds
//	https://hookwire.dev/problems/unavailable             503 Service unavailable: the node is not ready or is draining; retry, possibly on another replica
//
// Any other status gets the type "about:blank" and the status's standard
// reason phrase as its title, as RFC 9457 §4.2.1 prescribes.
//
// Besides the standard members, hookwire's problems may carry "errors" (a
// list of {"field", "reason"} for invalid input) and "request_id" (the
// X-Request-Id of the request, to quote when reporting a problem).
package problem

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// A Type is the URI of a kind of problem. Its status and title never change
// between occurrences.
type Type string

// The problem types hookwire answers with; see the package documentation.
const (
	BadRequest           Type = base + "bad-request"
	InvalidEvent         Type = base + "invalid-event"
	Unauthorized         Type = base + "unauthorized"
	Forbidden            Type = base + "forbidden"
	NotFound             Type = base + "not-found"
	MethodNotAllowed     Type = base + "method-not-allowed"
	PayloadTooLarge      Type = base + "payload-too-large"
	UnsupportedMediaType Type = base + "unsupported-media-type"
	RateLimited          Type = base + "rate-limited"
	Internal             Type = base + "internal"
	BrokerUnavailable    Type = base + "broker-unavailable"
	Unavailable          Type = base + "unavailable"

	// Blank is RFC 9457's type for a problem with no more semantics than
	// its status code.
	Blank Type = "about:blank"

	base = "https://hookwire.dev/problems/"
)

// Status returns t's HTTP status code, or 0 for Blank and unknown types.
func (t Type) Status() int {
	switch t {
	case BadRequest, InvalidEvent:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case RateLimited:
		return http.StatusTooManyRequests
	case Internal:
		return http.StatusInternalServerError
	case BrokerUnavailable, Unavailable:
		return http.StatusServiceUnavailable
	}
	return 0
}

// Title returns t's short, fixed summary, or "" for Blank and unknown types.
func (t Type) Title() string {
	switch t {
	case BadRequest:
		return "Bad request"
	case InvalidEvent:
		return "Invalid event"
	case Unauthorized:
		return "Unauthorized"
	case Forbidden:
		return "Forbidden"
	case NotFound:
		return "Not found"
	case MethodNotAllowed:
		return "Method not allowed"
	case PayloadTooLarge:
		return "Payload too large"
	case UnsupportedMediaType:
		return "Unsupported media type"
	case RateLimited:
		return "Rate limited"
	case Internal:
		return "Internal server error"
	case BrokerUnavailable:
		return "Broker unavailable"
	case Unavailable:
		return "Service unavailable"
	}
	return ""
}

// New returns a problem of type t with the given detail. t must be one of
// the types above, not Blank (use ForStatus).
func (t Type) New(detail string) Details {
	return Details{Type: string(t), Title: t.Title(), Status: t.Status(), Detail: detail}
}

// typeFor returns the default type of an HTTP status: BadRequest for 400,
// Unavailable for 503, the only type with that status for the others, and
// Blank when no type has it.
func typeFor(status int) Type {
	switch status {
	case http.StatusBadRequest:
		return BadRequest
	case http.StatusUnauthorized:
		return Unauthorized
	case http.StatusForbidden:
		return Forbidden
	case http.StatusNotFound:
		return NotFound
	case http.StatusMethodNotAllowed:
		return MethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return PayloadTooLarge
	case http.StatusUnsupportedMediaType:
		return UnsupportedMediaType
	case http.StatusTooManyRequests:
		return RateLimited
	case http.StatusInternalServerError:
		return Internal
	case http.StatusServiceUnavailable:
		return Unavailable
	}
	return Blank
}

// ForStatus returns a problem for an HTTP status with its default type
// (typeFor). A status without a hookwire type gets "about:blank" and the
// status's reason phrase as its title.
func ForStatus(status int, detail string) Details {
	if t := typeFor(status); t != Blank {
		return t.New(detail)
	}
	title := http.StatusText(status)
	if title == "" {
		title = "Status " + strconv.Itoa(status)
	}
	return Details{Type: string(Blank), Title: title, Status: status, Detail: detail}
}

// Details is an RFC 9457 problem details object with hookwire's extension
// members.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists the invalid fields of the request, for InvalidEvent.
	Errors []FieldError `json:"errors,omitempty"`
	// RequestID is the request's X-Request-Id.
	RequestID string `json:"request_id,omitempty"`
}

// FieldError says which field of the request is invalid and why. Field is
// a JSON member name, with an index for array elements ("users[3]").
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Write writes p to w as application/problem+json with status p.Status
// (500 when p.Status is not an HTTP error status). Headers set on w before
// (Retry-After, WWW-Authenticate, Allow) are kept.
func Write(w http.ResponseWriter, p Details) {
	if p.Status < 400 || p.Status > 599 {
		p.Status = http.StatusInternalServerError
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Details holds only strings and ints: encoding cannot fail.
	_ = enc.Encode(p)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(buf.Bytes())
}

// Error carries a problem to the HTTP error handler, keeping the client's
// text (Details) apart from the cause to log (Err, never shown).
type Error struct {
	Details Details
	Err     error
	// Header holds response headers that go with the problem
	// (WWW-Authenticate, Retry-After); the error handler sets them.
	Header http.Header
}

// Wrap returns an *Error showing p to the client and logging err.
func Wrap(p Details, err error) *Error { return &Error{Details: p, Err: err} }

func (e *Error) Error() string {
	s := e.Details.Title
	if e.Details.Detail != "" {
		s += ": " + e.Details.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
