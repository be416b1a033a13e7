//go:build unix

package subscribers

import (
	"net"
	"syscall"
)

// rawWriter writes to a socket's descriptor without waiting for room.
type rawWriter struct{ rc syscall.RawConn }

func rawOf(nc net.Conn) rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return rawWriter{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return rawWriter{}
	}
	return rawWriter{rc}
}

func (r rawWriter) ok() bool { return r.rc != nil }

// tryWrite is one write(2) on the non-blocking descriptor; EAGAIN is
// "nothing written", not an error. The runtime's write lock is held
// around it, as for any write on the connection.
func (r rawWriter) tryWrite(p []byte) (n int, err error) {
	werr := r.rc.Write(func(fd uintptr) bool {
		for {
			n, err = syscall.Write(int(fd), p)
			if err != syscall.EINTR {
				break
			}
		}
		return true // never wait for writability
	})
	if n < 0 {
		n = 0
	}
	if err == syscall.EAGAIN {
		err = nil
	}
	if werr != nil {
		return n, werr
	}
	return n, err
}
