package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/jsonobj"
)

// MaxBatch is the most events one POST /v1/events/batch may carry.
const MaxBatch = 1000

// Decoding errors are *bridge.ValidationError, like Validate's, so one path
// turns both into a 400: Field is "" when the body as a whole is at fault.

func bodyError(reason string) error { return &bridge.ValidationError{Reason: reason} }

func fieldError(field, reason string) error {
	return &bridge.ValidationError{Field: field, Reason: reason}
}

// decodeEvent decodes one event body strictly: exactly one JSON object of
// valid UTF-8 whose members are the event's fields, each at most once,
// matched case-sensitively and of the right JSON type. It does not check
// the contract's limits: the caller runs ev.Validate.
func decodeEvent(body []byte) (*bridge.Event, error) {
	if !utf8.Valid(body) {
		// A WebSocket text frame must be UTF-8: data that is not would
		// break every browser it is delivered to.
		return nil, bodyError("the body must be UTF-8")
	}
	return decodeEventUTF8(body)
}

// decodeEventUTF8 is decodeEvent for a body known to be valid UTF-8.
func decodeEventUTF8(body []byte) (*bridge.Event, error) {
	ev := new(bridge.Event)
	var seen [5]bool // id, type, users, channel, data
	dec := json.NewDecoder(bytes.NewReader(body))
	err := decodeObject(dec, func(name string) error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(err)
		}
		var i int
		switch name {
		case "id":
			i = 0
		case "type":
			i = 1
		case "users":
			i = 2
		case "channel":
			i = 3
		case "data":
			i = 4
		default:
			return fieldError(fieldName(name), "unknown field")
		}
		if seen[i] {
			return fieldError(name, "duplicate field")
		}
		seen[i] = true
		var err error
		switch i {
		case 0:
			ev.ID, err = stringValue(name, raw)
			if err == nil && ev.ID == "" {
				// Validate takes "" for absent; present, it breaks 1..128.
				err = fieldError(name, fmt.Sprintf("must be 1..%d characters of UTF-8 without control characters", bridge.MaxIDLen))
			}
		case 1:
			ev.Type, err = stringValue(name, raw)
		case 2:
			ev.Users, err = stringsValue(name, raw)
		case 3:
			ev.Channel, err = stringValue(name, raw)
			if err == nil && ev.Channel == "" {
				err = fieldError(name, "must match ^[A-Za-z0-9._:-]{1,128}$")
			}
		case 4:
			// Any JSON value, null included; Decode has checked it and
			// made a copy that does not alias body.
			ev.Data = raw
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// decodeBatch decodes a batch body strictly: one JSON object whose only
// member "events" is an array of 1..MaxBatch JSON objects. It returns each
// event's raw JSON for decodeEvent.
func decodeBatch(body []byte) ([]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, bodyError("the body must be UTF-8")
	}
	var events []json.RawMessage
	seen := false
	dec := json.NewDecoder(bytes.NewReader(body))
	err := decodeObject(dec, func(name string) error {
		if name != "events" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return syntaxError(err)
			}
			return fieldError(fieldName(name), "unknown field")
		}
		if seen {
			return fieldError(name, "duplicate field")
		}
		seen = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(err)
		}
		if raw[0] != '[' {
			return fieldError("events", "must be an array of events")
		}
		// raw is a checked array: Unmarshal cannot fail.
		if err := json.Unmarshal(raw, &events); err != nil {
			return syntaxError(err)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !seen:
		return nil, fieldError("events", "is required")
	case len(events) == 0 || len(events) > MaxBatch:
		return nil, fieldError("events", fmt.Sprintf("must hold 1..%d events, not %d", MaxBatch, len(events)))
	}
	for i, raw := range events {
		if raw[0] != '{' {
			return nil, fieldError("events["+strconv.Itoa(i)+"]", "must be a JSON object")
		}
	}
	return events, nil
}

// decodeObject reads one JSON object from dec and then the end of input
// (jsonobj.Walk), calling member for each member name with dec positioned
// before the value, which member must consume. Its own errors are body
// errors.
func decodeObject(dec *json.Decoder, member func(name string) error) error {
	err := jsonobj.Walk(dec, member)
	var je *jsonobj.Error
	if !errors.As(err, &je) {
		return err
	}
	if je.Kind == jsonobj.NotObject {
		return bodyError("the body must be a JSON object")
	}
	return bodyError(je.Reason)
}

// syntaxError describes a malformed body without echoing it.
func syntaxError(err error) error { return bodyError(jsonobj.Syntax(err).Reason) }

// stringValue returns the JSON string raw, which must not be null.
func stringValue(field string, raw json.RawMessage) (string, error) {
	if raw[0] != '"' {
		return "", fieldError(field, "must be a string")
	}
	var s string
	// raw is a checked string: Unmarshal cannot fail.
	_ = json.Unmarshal(raw, &s)
	return s, nil
}

// stringsValue returns the JSON array of strings raw, which must not be
// null, naming the first element that is not a string.
func stringsValue(field string, raw json.RawMessage) ([]string, error) {
	if raw[0] != '[' {
		return nil, fieldError(field, "must be an array of strings")
	}
	var elems []json.RawMessage
	_ = json.Unmarshal(raw, &elems)
	if len(elems) > bridge.MaxUsers {
		// Validate would say the same; stop before decoding them all.
		return nil, fieldError(field, fmt.Sprintf("at most %d users per event", bridge.MaxUsers))
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		s, err := stringValue(field+"["+strconv.Itoa(i)+"]", e)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// fieldName bounds a client-chosen member name echoed in an error.
func fieldName(name string) string { return jsonobj.Bound(name, 64) }

// dedupeUsers removes repeated user ids from ev.Users, keeping the first
// occurrence of each in order.
func dedupeUsers(ev *bridge.Event) {
	if len(ev.Users) < 2 {
		return
	}
	seen := make(map[string]struct{}, len(ev.Users))
	out := ev.Users[:0]
	for _, u := range ev.Users {
		if _, dup := seen[u]; dup {
			continue
		}
		seen[u] = struct{}{}
		out = append(out, u)
	}
	clear(ev.Users[len(out):])
	ev.Users = out
}
