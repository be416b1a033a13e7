// Package jsonobj walks one strict JSON object, member by member, for the
// decoders of untrusted bodies (ingest's events and batches, CloudEvents
// in the structured mode), and describes what is wrong with a malformed
// one without echoing it. Each caller keeps its own error type: Walk's
// own failures are *Error, whose Kind the caller turns into its answer.
//
// It imports nothing of hookwire.
package jsonobj

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// A Kind is what Walk found wrong with the input as a whole.
type Kind int

const (
	// Empty: no JSON value at all.
	Empty Kind = iota + 1
	// NotObject: a JSON value that is not an object.
	NotObject
	// Malformed: not JSON, or cut short.
	Malformed
	// Trailing: more input after the object.
	Trailing
)

// An Error is a failure of Walk itself (not of a member callback).
// Reason is a sentence safe to show the sender: it never quotes the
// input.
type Error struct {
	Kind   Kind
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// Walk reads one JSON object from dec and then the end of input. It calls
// member for each member name, in order, with dec positioned before the
// member's value, which member must consume (dec.Decode). An error of
// member is returned as it is; Walk's own are *Error. Repeated names are
// passed to member like any other: rejecting them is the caller's choice.
func Walk(dec *json.Decoder, member func(name string) error) error {
	tok, err := dec.Token()
	if err == io.EOF {
		return &Error{Kind: Empty, Reason: "the body is empty"}
	}
	if err != nil {
		return Syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &Error{Kind: NotObject, Reason: "the body is not a JSON object"}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Syntax(err)
		}
		// Inside an object, More and Token yield a string key or an error.
		name, _ := tok.(string)
		if err := member(name); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return Syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Kind: Trailing, Reason: "unexpected data after the JSON object"}
	}
	return nil
}

// Syntax describes a decoding error of encoding/json (from Token or
// Decode) as a Malformed *Error: where the JSON broke, never what it
// said.
func Syntax(err error) *Error {
	var se *json.SyntaxError
	reason := "malformed JSON"
	switch {
	case errors.As(err, &se):
		reason = fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		reason = "malformed JSON: unexpected end of body"
	}
	return &Error{Kind: Malformed, Reason: reason}
}

// Bound shortens client text echoed in an error (a member name, an
// attribute, a path segment) to at most max bytes and "…", cut on a rune
// boundary.
func Bound(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
