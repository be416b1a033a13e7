package drain

import "testing"

func TestBegin(t *testing.T) {
	var s State
	if s.Draining() {
		t.Fatal("a new State is draining")
	}
	select {
	case <-s.Done():
		t.Fatal("Done closed before Begin")
	default:
	}
	s.Begin()
	s.Begin()
	if !s.Draining() {
		t.Fatal("not draining after Begin")
	}
	<-s.Done()
}
