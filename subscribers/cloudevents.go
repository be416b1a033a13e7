package subscribers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/ingest/cloudevent"
)

// CloudEvents out (CONTRACT.md §7, asyncapi.yaml): a connection opened
// with format=cloudevents gets event frames whose data is the event as a
// structured CloudEvent (cloudevent.Encode). Its frames are encoded for the
// connection, not shared like ev.Wire: that costs an allocation per event,
// only on such connections.

// Values of the format query parameter.
const (
	formatDefault     = ""
	formatCloudEvents = "cloudevents"
)

// parseFormat checks the format query parameter: empty (hookwire frames)
// or "cloudevents".
func parseFormat(f string) (cloudEvents bool, err error) {
	switch f {
	case formatDefault, "hookwire":
		return false, nil
	case formatCloudEvents:
		return true, nil
	}
	if len(f) > 32 {
		f = f[:32] + "…"
	}
	return false, fmt.Errorf("unknown format %q: want cloudevents or none", f)
}

// ceEventFrame is an event frame whose data is a structured CloudEvent.
type ceEventFrame struct {
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	Cursor      string          `json:"cursor"`
	Event       string          `json:"event"`
	Channel     string          `json:"channel,omitempty"`
	Source      string          `json:"source,omitempty"`
	Data        json.RawMessage `json:"data"`
	Time        string          `json:"time"`
	TraceParent string          `json:"traceparent,omitempty"`
}

// cloudEventWire is ev's event frame with a structured CloudEvent as data,
// framed for the socket.
func cloudEventWire(ev *bridge.Event) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ceEventFrame{
		Type: "event", ID: ev.ID, Cursor: ev.Cursor.String(), Event: ev.Type, Channel: ev.Channel, Source: ev.Source,
		Data: cloudevent.Encode(ev, ev.Source), Time: ev.Time.UTC().Format(time.RFC3339Nano), TraceParent: ev.Trace["traceparent"],
	}); err != nil {
		// Data was validated on ingest; this is a programming error.
		panic(err)
	}
	return textFrame(bytes.TrimRight(buf.Bytes(), "\n"))
}

// eventWire is the socket bytes of ev for c: the shared frame, or the
// connection's own CloudEvents frame.
func (c *conn) eventWire(ev *bridge.Event) []byte {
	if c.cloudEvents {
		return cloudEventWire(ev)
	}
	return ev.Wire(textFrame)
}
