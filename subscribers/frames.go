package subscribers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Error codes of "error" frames.
const (
	codeBadRequest  = "bad_request"
	codeForbidden   = "forbidden"
	codeLimit       = "limit_exceeded"
	codeUnavailable = "unavailable"
	codeRateLimited = "rate_limited"
	codeBadToken    = "invalid_token"
)

// clientFrame is every frame a client may send; Op selects the fields used.
type clientFrame struct {
	Op      string `json:"op"`
	Channel string `json:"channel,omitempty"`
	Since   string `json:"since,omitempty"`
	Ref     string `json:"ref,omitempty"`
	Token   string `json:"token,omitempty"`
}

// maxRef bounds the ref a client may attach, in characters (CONTRACT.md
// §3), since it is echoed back.
const maxRef = 64

// validRef reports whether ref may be echoed: at most maxRef characters.
func validRef(ref string) bool { return utf8.RuneCountInString(ref) <= maxRef }

// clientError is the error of a client's request (a frame, or the query
// of an upgrade): code is the "error" frame's code, msg its message.
type clientError struct {
	code, msg string
}

func (e *clientError) Error() string { return e.code + ": " + e.msg }

// parseClientFrame decodes one client text frame strictly. On error it
// still returns the ref when it could be read, so the error frame can echo it.
func parseClientFrame(b []byte) (clientFrame, error) {
	var f clientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var loose struct {
			Ref any `json:"ref"`
		}
		if json.Unmarshal(b, &loose) == nil {
			if r, ok := loose.Ref.(string); ok && validRef(r) {
				f.Ref = r
			}
		}
		return f, &clientError{codeBadRequest, "malformed frame: " + jsonReason(err)}
	}
	if dec.More() {
		return f, &clientError{codeBadRequest, "malformed frame: trailing data"}
	}
	if !validRef(f.Ref) {
		f.Ref = ""
		return f, &clientError{codeBadRequest, fmt.Sprintf("ref longer than %d characters", maxRef)}
	}
	switch f.Op {
	case "subscribe", "unsubscribe", "ping", "refresh":
	case "":
		return f, &clientError{codeBadRequest, "missing op"}
	default:
		return f, &clientError{codeBadRequest, "unknown op"}
	}
	return f, nil
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "invalid JSON"
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// Server frames. They are small, so they are encoded per connection.
type welcomeFrame struct {
	Type   string `json:"type"`
	User   string `json:"user"`
	Conn   string `json:"conn"`
	Cursor string `json:"cursor,omitempty"`
}

type channelFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Ref     string `json:"ref,omitempty"`
}

type refreshedFrame struct {
	Type string `json:"type"`
	Exp  string `json:"exp"`
	Ref  string `json:"ref,omitempty"`
}

type pongFrame struct {
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`
}

type resetFrame struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed frame types are encoded
	}
	return b
}
