//go:build linux

package subscribers

import (
	"os"
	"sync"
	"syscall"
)

// poller watches the sockets of parked connections (wire.park): an idle
// connection keeps no reader goroutine, and so no stack, until its client
// sends something. It is one epoll instance, armed one-shot per parked
// socket, whose own descriptor the runtime's netpoller waits on: the poller
// goroutine sleeps like any network read and holds no thread.
//
// The epoll entries carry an id of the poller's, not the descriptor, so an
// event that arrives after its connection ended (and its descriptor was
// reused) finds nothing.
type poller struct {
	ep *os.File // the epoll descriptor
	rc syscall.RawConn

	start sync.Once
	done  chan struct{} // closed when the poller goroutine has returned

	mu     sync.Mutex // guards next, wires, closed
	next   uint32
	wires  map[uint32]*wire
	closed bool
}

// newPoller returns a poller, or nil when epoll cannot be used here: the
// connections then keep their reader goroutines.
func newPoller() *poller {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	return &poller{ep: f, rc: rc, done: make(chan struct{}), wires: make(map[uint32]*wire)}
}

// register gives w an id and starts the poller goroutine on first use. It
// reports false once the poller is closed.
func (p *poller) register(w *wire) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for {
		p.next++
		if _, used := p.wires[p.next]; p.next != 0 && !used {
			break
		}
	}
	w.pid = p.next
	p.wires[w.pid] = w
	p.start.Do(func() { go p.loop() })
	return true
}

// arm asks for one event when w's socket is readable (or at its end, or
// failed); it reports false when the socket is closed.
func (p *poller) arm(w *wire) bool {
	var err error
	cerr := w.raw.rc.Control(func(fd uintptr) {
		err = p.ctl(syscall.EPOLL_CTL_MOD, int(fd), w.pid)
		if err == syscall.ENOENT {
			err = p.ctl(syscall.EPOLL_CTL_ADD, int(fd), w.pid)
		}
		if err == syscall.EEXIST { // another reader of w added it meanwhile
			err = p.ctl(syscall.EPOLL_CTL_MOD, int(fd), w.pid)
		}
	})
	return cerr == nil && err == nil
}

func (p *poller) ctl(op, fd int, id uint32) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(id)}
	var err error
	if cerr := p.withEpoll(func(ep int) { err = syscall.EpollCtl(ep, op, fd, &ev) }); cerr != nil {
		return cerr
	}
	return err
}

// withEpoll runs f with the epoll descriptor, unless it is closed.
func (p *poller) withEpoll(f func(ep int)) error {
	return p.rc.Control(func(ep uintptr) { f(int(ep)) })
}

// forget removes w, whose connection is ending; its socket is still open.
func (p *poller) forget(w *wire) {
	if w.pid == 0 {
		return
	}
	p.mu.Lock()
	delete(p.wires, w.pid)
	p.mu.Unlock()
	_ = w.raw.rc.Control(func(fd uintptr) {
		_ = p.withEpoll(func(ep int) { _ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, int(fd), nil) })
	})
}

// loop is the poller goroutine: it wakes each wire whose socket became
// readable, until close.
func (p *poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		err := p.rc.Read(func(ep uintptr) bool {
			var err error
			n, err = syscall.EpollWait(int(ep), events, 0)
			if err != nil { // EINTR: try again when it is readable
				n = 0
			}
			return n > 0
		})
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if w := p.wires[uint32(ev.Fd)]; w != nil {
				w.wake(false)
			}
		}
		p.mu.Unlock()
	}
}

// close stops the poller goroutine and waits for it. Wires still parked
// stay parked: call it once no connection is left (after a drain).
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.start.Do(func() { close(p.done) }) // never started: nothing to wait for
	_ = p.ep.Close()
	<-p.done
}
