// Package redistest runs a real redis-server for tests.
//
// Each Server is a child process on a free 127.0.0.1 port with its data in
// the test's temporary directory; it is stopped in t.Cleanup. Tests are
// skipped when redis-server is not installed (or under -short), unless the
// CI environment variable is set, in which case they fail. It never touches
// a Redis on the default port 6379.
package redistest

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookwire/hookwire/internal/syncbuf"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// An Option changes how the server runs.
type Option func(*config)

type config struct {
	appendOnly bool
	tls        *TLS
	args       []string
}

// WithArgs adds redis-server arguments.
func WithArgs(args ...string) Option { return func(c *config) { c.args = append(c.args, args...) } }

// WithAppendOnly turns on the append-only file with fsync on every write,
// so a server killed with SIGKILL and restarted keeps every acknowledged
// write.
func WithAppendOnly() Option { return func(c *config) { c.appendOnly = true } }

// Server is one redis-server process. Its methods are safe for concurrent
// use.
type Server struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	args []string
	tls  *TLS // nil without TLS

	mu  sync.Mutex
	cmd *exec.Cmd       // nil while stopped
	out *syncbuf.Buffer // the running process's output
	end chan struct{}   // closed when cmd has been waited for
}

// Start starts a redis-server and returns once it answers PING. It stops
// the server in tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("redistest: skipped under -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redistest: redis-server not found (CI is set): %v", err)
		}
		tb.Skipf("redistest: redis-server not found: %v", err)
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), tls: c.tls}
	tb.Cleanup(s.stop)
	// Another process may take the port between picking and binding it:
	// try a few.
	var lastErr error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.args = []string{"--port", strconv.Itoa(s.port)}
		if c.tls != nil {
			s.args = c.tls.args(strconv.Itoa(s.port))
		}
		s.args = append(s.args, "--bind", "127.0.0.1", "--save", "", "--dir", s.dir, "--logfile", "")
		if c.appendOnly {
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			s.args = append(s.args, "--appendonly", "no")
		}
		s.args = append(s.args, c.args...)
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		if msg := lastErr.Error(); c.tls != nil && strings.Contains(msg, "Bad directive") && strings.Contains(msg, "tls-port") {
			// "Bad directive or wrong number of arguments": a
			// redis-server built without TLS.
			if os.Getenv("CI") != "" {
				tb.Fatalf("redistest: redis-server has no TLS support (CI is set): %v", lastErr)
			}
			tb.Skipf("redistest: redis-server has no TLS support: %v", lastErr)
		}
	}
	tb.Fatalf("redistest: %v", lastErr)
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago,
// never 6379.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 6379 {
			return port, nil
		}
	}
}

// start runs the process and waits for PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on port %d is already running", s.port)
	}
	out := &syncbuf.Buffer{}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	end := make(chan struct{})
	go func() { _ = cmd.Wait(); close(end) }()
	s.cmd, s.out, s.end = cmd, out, end

	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr(), s.tls.clientConfig())
		if err == nil {
			return nil
		}
		select {
		case <-end:
			s.cmd = nil
			return fmt.Errorf("redis-server %v exited: %s", s.args, out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %v\n%s", s.port, startTimeout, err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends one PING over a fresh connection. It avoids go-redis, whose
// dial retries and logging only slow down polling a starting server.
func ping(addr string, tc *tls.Config) error {
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, tc)
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if got := string(buf[:n]); got != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", got)
	}
	return nil
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Output returns what the running (or last) process wrote.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's "redis://127.0.0.1:port", or "rediss://…"
// with WithTLS.
func (s *Server) URL() string {
	if s.tls != nil {
		return "rediss://" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// Client returns a new client of the server, closed in tb.Cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.tls.clientConfig()})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// Running reports whether the process runs (not killed).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.end
	s.cmd = nil
}

// Restart starts the server again on the same port and directory, after
// Kill, and waits until it answers PING. Without WithAppendOnly it comes
// back empty.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.tb.Fatalf("redistest: restart: %v", err)
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 5s.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.end:
		s.cmd = nil
	case <-time.After(5 * time.Second):
		s.killLocked()
	}
}
