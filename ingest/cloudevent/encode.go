package cloudevent

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

// DefaultSource is the source of events that came without one (posted as
// plain hookwire events).
const DefaultSource = "hookwire"

// structuredEvent is the JSON event format of an outgoing CloudEvent.
type structuredEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	Channel         string          `json:"hookwirechannel,omitempty"`
	Cursor          string          `json:"hookwirecursor,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// Encode returns ev as a structured CloudEvent (JSON event format):
// its hookwire ID as id, source (DefaultSource when empty), type, time,
// data, and the extensions hookwirechannel and hookwirecursor. The users an
// event was addressed to are left out: a subscriber must not learn who
// else received it.
func Encode(ev *bridge.Event, source string) json.RawMessage {
	if source == "" {
		source = DefaultSource
	}
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	se := structuredEvent{
		SpecVersion: SpecVersion, ID: ev.ID, Source: source, Type: ev.Type,
		DataContentType: "application/json", Channel: ev.Channel, Cursor: ev.Cursor.String(), Data: data,
	}
	if t := ev.FrameTime(); !t.IsZero() {
		se.Time = t.UTC().Format(time.RFC3339Nano)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(se); err != nil {
		// Data was validated on ingest; nothing else can fail.
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
