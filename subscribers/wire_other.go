//go:build !unix

package subscribers

import "net"

// rawWriter is unavailable here: every write goes through the
// connection's writer goroutine.
type rawWriter struct{}

func rawOf(net.Conn) rawWriter { return rawWriter{} }

func (*rawWriter) ok() bool { return false }

func (*rawWriter) tryWrite([]byte) (int, error) { return 0, nil }

func (*rawWriter) awaitReadable() {}
