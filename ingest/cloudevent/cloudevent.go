// Package cloudevent decodes CloudEvents 1.0 over the HTTP binding
// (structured, binary and batch content modes, JSON event format) into
// hookwire events, and encodes hookwire events as structured CloudEvents
// (CONTRACT.md §7). It is pure decoding: no HTTP server, no Echo.
//
// Addressing comes from the extension attributes hookwireusers
// (comma-separated user ids) and hookwirechannel. The idempotency key is
// the pair (source, id): EventID hashes it into the hookwire event ID, so
// the same id from two sources makes two events.
//
// Errors are *Error, whose Status is 400 (a missing or invalid attribute,
// another specversion, data that is not JSON) or 415 (a content type that
// is not JSON), for the HTTP edge to answer as problem+json.
//
// github.com/cloudevents/sdk-go/v2 (v2.16.2) was measured and not used:
// NewEventFromHTTPRequest alone adds 2.1 MB to a small net/http binary
// (8.8 → 10.9 MB) and 45 packages from 6 modules new to hookwire (sdk-go,
// zap, multierr, json-iterator, modern-go/reflect2 and concurrent), for
// what is here a few hundred lines; and its decoding is lenient where
// hookwire's ingest is strict (repeated members, numbers as attributes).
package cloudevent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/jsonobj"
)

// Media types of the HTTP binding.
const (
	MediaStructured = "application/cloudevents+json"
	MediaBatch      = "application/cloudevents-batch+json"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// Extension attributes that address a hookwire event.
const (
	AttrUsers   = "hookwireusers"
	AttrChannel = "hookwirechannel"
)

// Limits beyond the contract's event limits.
const (
	MaxIDLen     = 256 // the CloudEvents id; hashed into the event ID
	MaxSourceLen = 512
	MaxBatch     = 1000
	maxAttrLen   = 4096 // any other string attribute
)

// An Error is a CloudEvent hookwire refuses. Status is 400 or 415;
// Attribute names the attribute at fault ("" for the event as a whole).
type Error struct {
	Status    int
	Attribute string
	Reason    string
}

func (e *Error) Error() string {
	if e.Attribute == "" {
		return e.Reason
	}
	return e.Attribute + ": " + e.Reason
}

func badAttr(attr, format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Attribute: attr, Reason: fmt.Sprintf(format, args...)}
}

func badEvent(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

// A Mode is how a request carries CloudEvents.
type Mode int

const (
	// None: not a CloudEvent (a plain hookwire event body).
	None Mode = iota
	// Structured: Content-Type application/cloudevents+json.
	Structured
	// Binary: ce-* headers, the body is the data.
	Binary
	// Batch: Content-Type application/cloudevents-batch+json.
	Batch
)

// DetectMode tells how h's request carries CloudEvents. A structured or
// batch content type wins over ce-* headers, as the binding says.
func DetectMode(h http.Header) Mode {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch strings.ToLower(mt) {
	case MediaStructured:
		return Structured
	case MediaBatch:
		return Batch
	}
	if len(h.Values("Ce-Specversion")) > 0 {
		return Binary
	}
	return None
}

// An Event is a decoded CloudEvent.
type Event struct {
	ID      string
	Source  string
	Type    string
	Subject string
	// Time is zero when the event has none.
	Time    time.Time
	Users   []string
	Channel string
	// Data is the JSON data, nil when the event has none.
	Data json.RawMessage
}

// EventID is the hookwire event ID of the CloudEvent (source, id): "ce_"
// and 32 hex digits of SHA-256 over both, the same on every replica.
func EventID(source, id string) string {
	h := sha256.New()
	// The length makes the split unambiguous whatever the bytes.
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(source))))
	h.Write([]byte(source))
	h.Write([]byte(id))
	return "ce_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Bridge returns the hookwire event of e, not yet validated (the caller
// runs Validate, which checks type, users and channel against the
// contract). The caller sets the event's source (bridge.Event.Source)
// from e.Source.
func (e *Event) Bridge() *bridge.Event {
	ev := &bridge.Event{ID: EventID(e.Source, e.ID), Type: e.Type, Users: e.Users, Channel: e.Channel, Data: e.Data}
	if !e.Time.IsZero() {
		ev.Occurred = e.Time
	}
	return ev
}

// Decode decodes the one CloudEvent of a structured or binary request.
func Decode(h http.Header, body []byte) (*Event, error) {
	switch DetectMode(h) {
	case Structured:
		if err := checkEncoding(h); err != nil {
			return nil, err
		}
		return DecodeStructured(body)
	case Binary:
		return DecodeBinary(h, body)
	case Batch:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Reason: "a batch (" + MediaBatch + ") goes to /v1/events/batch"}
	}
	return nil, &Error{Status: http.StatusUnsupportedMediaType, Reason: "not a CloudEvent: send Content-Type " + MediaStructured + ", or ce-* headers with Content-Type application/json"}
}

func checkEncoding(h http.Header) error {
	if enc := h.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return &Error{Status: http.StatusUnsupportedMediaType, Reason: "content codings are not supported; send the body uncompressed"}
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return &Error{Status: http.StatusUnsupportedMediaType, Reason: "malformed Content-Type"}
	}
	_ = mt
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &Error{Status: http.StatusUnsupportedMediaType, Reason: "the charset must be UTF-8"}
	}
	return nil
}

// CheckBatch checks the headers of a batch request.
func CheckBatch(h http.Header) error {
	if DetectMode(h) != Batch {
		return &Error{Status: http.StatusUnsupportedMediaType, Reason: "a batch of CloudEvents is Content-Type " + MediaBatch}
	}
	return checkEncoding(h)
}

// attrs collects an event's attributes as decoded from either mode.
type attrs struct {
	specversion, id, source, typ string
	has                          map[string]bool
	subject, time, dataschema    string
	users, channel               string
	hasUsers, hasChannel         bool
}

// set records attribute name = value (a string form) from either mode.
func (a *attrs) set(name, value string) error {
	if a.has == nil {
		a.has = map[string]bool{}
	}
	if a.has[name] {
		return badAttr(name, "is repeated")
	}
	a.has[name] = true
	switch name {
	case "specversion":
		a.specversion = value
	case "id":
		a.id = value
	case "source":
		a.source = value
	case "type":
		a.typ = value
	case "subject":
		a.subject = value
	case "time":
		a.time = value
	case "dataschema":
		a.dataschema = value
	case AttrUsers:
		a.users, a.hasUsers = value, true
	case AttrChannel:
		a.channel, a.hasChannel = value, true
	default:
		if !validExtensionName(name) {
			return badAttr(attrName(name), "is not a valid attribute name (a-z and 0-9, at most 20 characters)")
		}
		if len(value) > maxAttrLen {
			return badAttr(name, "is longer than %d bytes", maxAttrLen)
		}
	}
	return nil
}

// event checks the attributes and returns the event.
func (a *attrs) event() (*Event, error) {
	switch {
	case !a.has["specversion"]:
		return nil, badAttr("specversion", "is required")
	case a.specversion != SpecVersion:
		return nil, badAttr("specversion", "must be %q, not %q", SpecVersion, attrValue(a.specversion))
	case a.id == "":
		return nil, badAttr("id", "is required (a non-empty string)")
	case !validText(a.id, MaxIDLen):
		return nil, badAttr("id", "must be at most %d bytes of UTF-8 without control characters", MaxIDLen)
	case a.source == "":
		return nil, badAttr("source", "is required (a non-empty URI-reference)")
	case !validText(a.source, MaxSourceLen):
		return nil, badAttr("source", "must be at most %d bytes of UTF-8 without control characters", MaxSourceLen)
	case a.typ == "":
		return nil, badAttr("type", "is required (a non-empty string)")
	}
	if _, err := url.Parse(a.source); err != nil || strings.ContainsAny(a.source, " \t") {
		return nil, badAttr("source", "is not a URI-reference")
	}
	if a.has["dataschema"] {
		if u, err := url.Parse(a.dataschema); err != nil || !u.IsAbs() {
			return nil, badAttr("dataschema", "is not an absolute URI")
		}
	}
	ev := &Event{ID: a.id, Source: a.source, Type: a.typ, Subject: a.subject}
	if len(ev.Subject) > maxAttrLen {
		return nil, badAttr("subject", "is longer than %d bytes", maxAttrLen)
	}
	if a.has["time"] {
		t, err := time.Parse(time.RFC3339Nano, a.time)
		if err != nil {
			return nil, badAttr("time", "is not an RFC 3339 timestamp")
		}
		ev.Time = t
	}
	if a.hasUsers {
		for i, u := range strings.Split(a.users, ",") {
			u = strings.TrimSpace(u)
			if u == "" {
				return nil, badAttr(AttrUsers, "user %d is empty (comma-separated user ids)", i+1)
			}
			ev.Users = append(ev.Users, u)
			if len(ev.Users) > bridge.MaxUsers {
				return nil, badAttr(AttrUsers, "at most %d users per event", bridge.MaxUsers)
			}
		}
	}
	if a.hasChannel {
		if a.channel == "" {
			return nil, badAttr(AttrChannel, "must match ^[A-Za-z0-9._:-]{1,128}$")
		}
		ev.Channel = a.channel
	}
	return ev, nil
}

// validExtensionName: 1..20 of a-z0-9 (the specification's names).
func validExtensionName(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validText: 1..max bytes of UTF-8 without control characters.
func validText(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// attrName and attrValue bound client text echoed in errors.
func attrName(s string) string { return jsonobj.Bound(s, 32) }

func attrValue(s string) string { return jsonobj.Bound(s, 16) }

// jsonContentType reports whether a datacontenttype is JSON:
// application/json, text/json or any */*+json.
func jsonContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	mt = strings.ToLower(mt)
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// DecodeStructured decodes one event in the JSON event format, strictly:
// one JSON object of UTF-8, each member at most once, attributes of the
// types the format gives them, data a JSON value.
func DecodeStructured(body []byte) (*Event, error) {
	if !utf8.Valid(body) {
		return nil, badEvent("the body must be UTF-8")
	}
	var (
		a        attrs
		data     json.RawMessage
		hasData  bool
		ct       string
		hasCT    bool
		dataB64  bool
		rawAttrs = map[string]bool{}
	)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := decodeObject(dec, func(name string) error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(err)
		}
		if rawAttrs[name] {
			return badAttr(attrName(name), "is repeated")
		}
		rawAttrs[name] = true
		switch name {
		case "data":
			data, hasData = raw, true
			return nil
		case "data_base64":
			dataB64 = true
			return nil
		case "datacontenttype":
			s, err := stringMember(name, raw)
			if err != nil {
				return err
			}
			ct, hasCT = s, true
			return nil
		}
		if string(raw) == "null" {
			// A null attribute is an absent one.
			return nil
		}
		var value string
		switch name {
		case "specversion", "id", "source", "type", "subject", "time", "dataschema", AttrUsers, AttrChannel:
			s, err := stringMember(name, raw)
			if err != nil {
				return err
			}
			value = s
		default:
			// Extension attributes: string, integer or boolean.
			switch raw[0] {
			case '"':
				_ = json.Unmarshal(raw, &value)
			case 't', 'f':
				value = string(raw)
			case '{', '[':
				return badAttr(attrName(name), "must be a string, a number or a boolean")
			default:
				if _, err := strconv.ParseInt(string(raw), 10, 32); err != nil {
					return badAttr(attrName(name), "a number attribute must be a 32-bit integer")
				}
				value = string(raw)
			}
		}
		return a.set(name, value)
	})
	if err != nil {
		return nil, err
	}
	ev, err := a.event()
	if err != nil {
		return nil, err
	}
	switch {
	case dataB64:
		return nil, badAttr("data_base64", "binary data is not supported: data must be JSON")
	case hasCT && !jsonContentType(ct):
		return nil, badAttr("datacontenttype", "must be JSON (application/json or */*+json): data must be JSON")
	case hasData:
		ev.Data = data
	}
	return ev, nil
}

func stringMember(name string, raw json.RawMessage) (string, error) {
	if raw[0] != '"' {
		return "", badAttr(name, "must be a string")
	}
	var s string
	_ = json.Unmarshal(raw, &s) // raw is a checked string
	return s, nil
}

// DecodeBinary decodes an event of the binary content mode: attributes in
// ce-* headers (percent-encoded), the body its data, whose Content-Type
// must be JSON (else a 415). An empty body is an event without data.
func DecodeBinary(h http.Header, body []byte) (*Event, error) {
	if enc := h.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Reason: "content codings are not supported; send the body uncompressed"}
	}
	ct := h.Get("Content-Type")
	if len(body) > 0 || ct != "" {
		if !jsonContentType(ct) {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Reason: "the data must be JSON: Content-Type application/json"}
		}
		if _, params, _ := mime.ParseMediaType(ct); params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8") {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Reason: "the charset must be UTF-8"}
		}
	}
	var a attrs
	for k, vs := range h {
		lk := strings.ToLower(k)
		name, ok := strings.CutPrefix(lk, "ce-")
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return nil, badAttr(attrName(name), "is repeated")
		}
		if name == "datacontenttype" {
			return nil, badAttr(name, "goes in Content-Type in the binary mode")
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil || !utf8.ValidString(v) {
			return nil, badAttr(attrName(name), "is not percent-encoded UTF-8")
		}
		if err := a.set(name, v); err != nil {
			return nil, err
		}
	}
	ev, err := a.event()
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return ev, nil
	}
	if !utf8.Valid(body) {
		return nil, badAttr("data", "must be UTF-8 JSON")
	}
	if !json.Valid(body) {
		return nil, badAttr("data", "is not JSON")
	}
	ev.Data = bytes.Clone(body)
	return ev, nil
}

// DecodeBatch splits a batch body: a JSON array of 1..MaxBatch JSON
// objects, each to be decoded with DecodeStructured.
func DecodeBatch(body []byte) ([]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, badEvent("the body must be UTF-8")
	}
	var raws []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raws); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, badEvent("a batch is a JSON array of CloudEvents")
		}
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badEvent("unexpected data after the JSON array")
	}
	if raws == nil {
		return nil, badEvent("a batch is a JSON array of CloudEvents")
	}
	if len(raws) == 0 || len(raws) > MaxBatch {
		return nil, badEvent("a batch holds 1..%d events, not %d", MaxBatch, len(raws))
	}
	for i, r := range raws {
		if r[0] != '{' {
			return nil, badEvent("event %d of the batch is not a JSON object", i)
		}
	}
	return raws, nil
}

// decodeObject reads one JSON object from dec and then the end of input
// (jsonobj.Walk), calling member for each member name with dec before its
// value. Its own errors are 400s for the event as a whole.
func decodeObject(dec *json.Decoder, member func(name string) error) error {
	err := jsonobj.Walk(dec, member)
	var je *jsonobj.Error
	if !errors.As(err, &je) {
		return err
	}
	if je.Kind == jsonobj.NotObject {
		return badEvent("a CloudEvent is a JSON object")
	}
	return badEvent("%s", je.Reason)
}

// syntaxError describes malformed JSON without echoing it.
func syntaxError(err error) error { return badEvent("%s", jsonobj.Syntax(err).Reason) }
