// Package drain holds a replica's one draining state. cmd/hookwire owns the
// State: it calls Begin the instant SIGTERM or SIGINT arrives; the WebSocket
// server refuses upgrades and /readyz reports not ready from that instant on,
// both by reading the same State.
package drain

import "sync"

// State is a one-way switch from serving to draining. The zero value is
// serving and ready to use; a State must not be copied after first use.
type State struct {
	once sync.Once
	mu   sync.Mutex
	ch   chan struct{}
}

func (s *State) done() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Begin marks the replica as draining. It is idempotent.
func (s *State) Begin() { s.once.Do(func() { close(s.done()) }) }

// Draining reports whether Begin was called.
func (s *State) Draining() bool {
	select {
	case <-s.done():
		return true
	default:
		return false
	}
}

// Done is closed when Begin is called.
func (s *State) Done() <-chan struct{} { return s.done() }
