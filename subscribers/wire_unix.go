//go:build unix

package subscribers

import (
	"net"
	"syscall"
)

// rawWriter writes to a socket's descriptor without waiting for room.
type rawWriter struct {
	rc syscall.RawConn
	// op is the state of one write, made on the first: RawConn.Write
	// takes a func, and a fresh closure with its results would cost
	// three allocations a delivery. The wire's lock guards it.
	op *rawOp
}

type rawOp struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// write is one write(2) on the non-blocking descriptor.
func (o *rawOp) write(fd uintptr) bool {
	for {
		o.n, o.err = syscall.Write(int(fd), o.p)
		if o.err != syscall.EINTR {
			break
		}
	}
	return true // never wait for writability
}

func rawOf(nc net.Conn) rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return rawWriter{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return rawWriter{}
	}
	return rawWriter{rc: rc}
}

func (r *rawWriter) ok() bool { return r.rc != nil }

// awaitReadable blocks until the socket has bytes to read, is at its end
// or fails, or its read deadline passes; it reads nothing (MSG_PEEK). The
// reader goroutine is its only caller.
func (r *rawWriter) awaitReadable() {
	if r.rc == nil {
		return
	}
	_ = r.rc.Read(peekReadable)
}

// peekReadable reports whether a read on fd would not wait.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for readability
		}
		return true // data, the end of the stream, or an error to report
	}
}

// tryWrite writes what the socket takes of p now; EAGAIN is "nothing
// written", not an error. The runtime's write lock is held around it, as
// for any write on the connection.
func (r *rawWriter) tryWrite(p []byte) (n int, err error) {
	o := r.op
	if o == nil {
		o = new(rawOp)
		o.fn = o.write
		r.op = o
	}
	o.p, o.n = p, 0
	werr := r.rc.Write(o.fn)
	n, err = max(o.n, 0), o.err
	o.p, o.err = nil, nil
	if err == syscall.EAGAIN {
		err = nil
	}
	if werr != nil {
		return n, werr
	}
	return n, err
}
