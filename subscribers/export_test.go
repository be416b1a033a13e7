package subscribers

import (
	"net"
	"time"

	"github.com/hookwire/hookwire/auth"
)

// ParseClientFrameForTest exposes the client-frame parser to the fuzzer.
func ParseClientFrameForTest(b []byte) error {
	_, err := parseClientFrame(b)
	return err
}

// ParseChannelsForTest exposes the ?channels= parser to the fuzzer, for a
// server allowing maxChannels per connection.
func ParseChannelsForTest(claims auth.Claims, maxChannels int, list string) ([]string, error) {
	s := &Server{opts: Options{MaxChannels: maxChannels}}
	return s.parseChannels(claims, list)
}

// OriginAllowedForTest exposes the Origin matcher to the fuzzer.
func OriginAllowedForTest(allowed []string, origin string) bool {
	return originAllowed(allowed, origin)
}

// WriteAllForTest writes bufs to nc as a connection's writer does, under
// the given write budget.
func WriteAllForTest(nc net.Conn, bufs [][]byte, stall, limit time.Duration) error {
	return newWire(nc).writeAll(bufs, stall, limit)
}

// LeaveControlFramesToGorillaForTest makes s read client pings and pongs
// through gorilla, as before readControl: the fuzzer compares the two.
func LeaveControlFramesToGorillaForTest(s *Server) { s.gorillaControl = true }
