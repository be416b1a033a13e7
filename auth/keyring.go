package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hookwire/hookwire/internal/reload"
)

// DefaultKeysPollInterval is Watch's period when it is given none.
const DefaultKeysPollInterval = 10 * time.Second

// A KeyRing holds the current publisher keys and replaces them as a whole,
// so keys rotate without a restart and a request sees either the old set or
// the new one. It has the lookup methods of APIKeys and is safe for
// concurrent use.
type KeyRing struct {
	keys atomic.Pointer[APIKeys]
	opts APIKeyOptions
}

// NewKeyRing returns a KeyRing holding keys (nil means none). Watch parses
// reloaded files with opts.
func NewKeyRing(keys *APIKeys, opts APIKeyOptions) *KeyRing {
	r := &KeyRing{opts: opts}
	if keys == nil {
		keys = &APIKeys{}
	}
	r.keys.Store(keys)
	return r
}

// Keys returns the current set.
func (r *KeyRing) Keys() *APIKeys { return r.keys.Load() }

// Store makes keys the current set.
func (r *KeyRing) Store(keys *APIKeys) {
	if keys == nil {
		keys = &APIKeys{}
	}
	r.keys.Store(keys)
}

// Len returns the number of current keys.
func (r *KeyRing) Len() int { return r.Keys().Len() }

// Publisher is APIKeys.Publisher on the current set.
func (r *KeyRing) Publisher(key string) (Publisher, bool) { return r.Keys().Publisher(key) }

// Watch reads the API keys file at path now and then every interval (zero
// means DefaultKeysPollInterval) until ctx is done, and makes its keys
// current whenever its content differs from the current set's source. It
// compares content (SHA-256), not modification times, so a rewrite within
// the clock's granularity, or an atomic rename onto path, is seen.
//
// A file that cannot be read or parsed leaves the current keys in place.
// report, when not nil, is called from Watch's goroutine after each reload
// attempt: with nil when new keys are current, with the error otherwise.
// An unchanged bad file, or the same read error, is reported once. Watch
// logs nothing and returns when ctx is done; run it in a goroutine the
// caller waits for.
func (r *KeyRing) Watch(ctx context.Context, path string, interval time.Duration, report func(error)) {
	if interval <= 0 {
		interval = DefaultKeysPollInterval
	}
	var data []byte // the content Digest read, for Load
	reload.Poll(ctx, interval, reload.Poller{
		Digest: func() ([sha256.Size]byte, error) {
			var err error
			if data, err = readKeysFile(path); err != nil {
				return [sha256.Size]byte{}, fmt.Errorf("reload API keys: %w", err)
			}
			return sha256.Sum256(data), nil
		},
		Current: func(sum [sha256.Size]byte) bool {
			cur := r.Keys()
			return cur.fromFile && cur.digest == sum
		},
		Load: func() error {
			keys, err := parseKeysFile(data, r.opts)
			if err != nil {
				return fmt.Errorf("reload API keys from %s: %w", path, err)
			}
			r.keys.Store(keys)
			return nil
		},
		Report: report,
	})
}
