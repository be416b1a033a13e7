package bridge

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits of the contract (CONTRACT.md §2).
const (
	MaxIDLen      = 128
	MaxTypeLen    = 128
	MaxChannelLen = 128
	MaxUserLen    = 128
	MaxUsers      = 1000
)

// An Event is one accepted message. Stream implementations fill Cursor and
// Time when they append or read it; after that an Event is read-only: the
// fan-out, every replay and every connection it is delivered to share it,
// from any goroutine, and none writes it. What one delivery knows of the
// event (live or replayed, its trace) travels beside it in a Delivery.
//
// The only state an Event holds besides its fields is the cache of its
// encoded frame (Frame, Wire): each is computed once under a sync.Once,
// from the read-only fields alone, so every reader gets the same bytes.
type Event struct {
	ID      string
	Type    string
	Users   []string
	Channel string
	// Source is the CloudEvents source of an event posted as a CloudEvent
	// (CONTRACT.md §7); the frame carries it when it is set.
	Source string
	Data   json.RawMessage
	Cursor Cursor
	Time   time.Time
	// Occurred is when the producer says the event happened (a
	// CloudEvent's time, CONTRACT.md §7), zero when it said nothing. The
	// frame's time is Occurred when set, else Time; latency is measured
	// from Time, the append.
	Occurred time.Time
	// Trace is the W3C trace context (traceparent, tracestate) of the
	// append, carried through the stream so fan-out spans join the trace.
	Trace map[string]string
	// GeneratedID reports that the server made ID (AssignID): no client can
	// repeat it, so the stream keeps no dedupe record for it. An ID a client
	// sent is always remembered, whatever its shape.
	GeneratedID bool

	frameOnce sync.Once
	frame     []byte
	wireOnce  sync.Once
	wire      []byte
}

// FrameTime is the time an event frame shows: Occurred when the producer
// gave one, else the append's Time.
func (ev *Event) FrameTime() time.Time {
	if !ev.Occurred.IsZero() {
		return ev.Occurred
	}
	return ev.Time
}

// NewID returns a fresh event ID for events posted without one.
func NewID() string { return "evt_" + rand.Text() }

// AssignID gives ev a fresh server-made ID when it has none, and marks it
// GeneratedID. It must run before ev is appended.
func (ev *Event) AssignID() {
	if ev.ID == "" {
		ev.ID = NewID()
		ev.GeneratedID = true
	}
}

// ValidationError says which field of an event is invalid and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks ev against the contract's rules. It returns a
// *ValidationError naming the first offending field.
func (ev *Event) Validate() error {
	switch {
	case ev.ID != "" && !validText(ev.ID, MaxIDLen):
		return &ValidationError{"id", fmt.Sprintf("must be 1..%d characters of UTF-8 without control characters", MaxIDLen)}
	case ev.Type == "":
		return &ValidationError{"type", "is required"}
	case !validText(ev.Type, MaxTypeLen):
		return &ValidationError{"type", fmt.Sprintf("must be 1..%d characters of UTF-8 without control characters", MaxTypeLen)}
	case len(ev.Users) == 0 && ev.Channel == "":
		return &ValidationError{"users", "at least one of users (non-empty) and channel is required"}
	case len(ev.Users) > MaxUsers:
		return &ValidationError{"users", fmt.Sprintf("at most %d users per event", MaxUsers)}
	case ev.Channel != "" && !ValidChannel(ev.Channel):
		return &ValidationError{"channel", "must match ^[A-Za-z0-9._:-]{1,128}$"}
	}
	for i, u := range ev.Users {
		if !validUser(u) {
			return &ValidationError{fmt.Sprintf("users[%d]", i), fmt.Sprintf("must be 1..%d bytes of UTF-8 without control characters", MaxUserLen)}
		}
	}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return &ValidationError{"data", "must be a JSON value"}
	}
	return nil
}

// ValidChannel reports whether name is a valid channel name.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !channelByte(name[i]) {
			return false
		}
	}
	return true
}

func channelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// validUser reports whether id is a valid user id: 1..128 bytes of UTF-8
// without control characters.
func validUser(id string) bool { return len(id) <= MaxUserLen && validText(id, MaxUserLen) }

// validText: 1..max characters (runes) of valid UTF-8 with no control
// characters.
func validText(s string, max int) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// HasUser reports whether ev is addressed to user.
func (ev *Event) HasUser(user string) bool {
	for _, u := range ev.Users {
		if u == user {
			return true
		}
	}
	return false
}

// matches reports whether ev is delivered to a connection of user that is
// subscribed to the channels for which subscribed returns true: user events
// go to every connection of the user, channel events to every subscriber of
// the channel, and events with both only to those users' subscribed
// connections.
func (ev *Event) matches(user string, subscribed func(channel string) bool) bool {
	if ev.Channel == "" {
		return ev.HasUser(user)
	}
	if !subscribed(ev.Channel) {
		return false
	}
	return len(ev.Users) == 0 || ev.HasUser(user)
}

var errEncodeFrame = errors.New("encode frame")

// wireEvent is the "event" frame of the WebSocket protocol.
type wireEvent struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Cursor  string          `json:"cursor"`
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Source  string          `json:"source,omitempty"`
	Data    json.RawMessage `json:"data"`
	Time    string          `json:"time"`
	// TraceParent lets a browser continue the event's trace.
	TraceParent string `json:"traceparent,omitempty"`
}

// Frame returns the event's WebSocket frame, encoded once however many
// connections it is written to. The returned slice must not be modified.
func (ev *Event) Frame() []byte {
	ev.frameOnce.Do(func() { ev.frame = ev.FrameWith(ev.Data) })
	return ev.frame
}

// FrameWith returns the event's frame with data in place of ev.Data,
// encoded anew on every call: for a connection that gets the event in
// another shape (subscribers' format=cloudevents).
func (ev *Event) FrameWith(data json.RawMessage) []byte {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var buf bytes.Buffer
	buf.Grow(128 + len(data))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wireEvent{
		Type: "event", ID: ev.ID, Cursor: ev.Cursor.String(), Event: ev.Type,
		Channel: ev.Channel, Source: ev.Source, Data: data, Time: ev.FrameTime().UTC().Format(time.RFC3339Nano),
		TraceParent: ev.Trace["traceparent"],
	}); err != nil {
		// Data was validated on ingest; this is a programming error.
		panic(fmt.Errorf("%w: %v", errEncodeFrame, err))
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// Wire returns enc(ev.Frame()), computed once: the delivery layer's own
// framing of the frame (a WebSocket header, say), shared like the frame by
// every connection the event goes to. Every call passes the same enc.
func (ev *Event) Wire(enc func(frame []byte) []byte) []byte {
	ev.wireOnce.Do(func() { ev.wire = enc(ev.Frame()) })
	return ev.wire
}
