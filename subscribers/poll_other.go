//go:build !linux

package subscribers

// poller is Linux's (epoll) only: elsewhere every connection keeps its
// reader goroutine, waiting in awaitFrame.
type poller struct{}

func newPoller() *poller { return nil }

func (*poller) register(*wire) bool { return false }

func (*poller) arm(*wire) bool { return false }

func (*poller) forget(*wire) {}

func (*poller) close() {}
