// Package reload is the content-polling loop behind the hot reload of the
// API keys file (auth.KeyRing.Watch) and of the sources file
// (sources.Registry.Watch).
package reload

import (
	"context"
	"crypto/sha256"
	"time"
)

// A Poller is what Poll needs to know about one reloadable file.
type Poller struct {
	// Digest hashes the content as it is now (SHA-256). Its error means
	// the content cannot be read; it is reported as returned.
	Digest func() ([sha256.Size]byte, error)
	// Current says whether sum is the content already in use.
	Current func(sum [sha256.Size]byte) bool
	// Load loads the content and makes it current; its error leaves the
	// current content in place and is reported as returned.
	Load func() error
	// Report, when not nil, is told nil after each successful Load and
	// each error, an error with the message last reported only once.
	Report func(error)
}

// Poll polls p now and then every interval until ctx is done. Content equal
// to the current one, or to the last rejected one, is not loaded again.
func Poll(ctx context.Context, interval time.Duration, p Poller) {
	report := p.Report
	if report == nil {
		report = func(error) {}
	}
	var (
		rejected     [sha256.Size]byte // content last rejected
		haveRejected bool
		lastErr      string // message last reported
	)
	once := func(err error) {
		if msg := err.Error(); msg != lastErr {
			lastErr = msg
			report(err)
		}
	}
	poll := func() {
		sum, err := p.Digest()
		if err != nil {
			once(err)
			return
		}
		if p.Current(sum) || haveRejected && sum == rejected {
			lastErr = ""
			return
		}
		if err := p.Load(); err != nil {
			rejected, haveRejected = sum, true
			once(err)
			return
		}
		lastErr, haveRejected = "", false
		report(nil)
	}
	poll()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			poll()
		}
	}
}
