package subscribers

import (
	"fmt"

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

// cloudEventWire is ev's event frame with a structured CloudEvent as data,
// framed for the socket.
func cloudEventWire(ev *bridge.Event) []byte {
	return textFrame(ev.FrameWith(cloudevent.Encode(ev, ev.Source)))
}

// eventWire is the socket bytes of ev for c: the shared frame, or the
// connection's own CloudEvents frame.
func (c *conn) eventWire(ev *bridge.Event) []byte {
	if c.cloudEvents {
		return cloudEventWire(ev)
	}
	return ev.Wire(textFrame)
}
