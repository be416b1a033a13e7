package sources

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hookwire/hookwire/internal/reload"
)

// DefaultPollInterval is Watch's period when it is given none.
const DefaultPollInterval = 10 * time.Second

// A Registry holds the current Set and replaces it as a whole, so sources
// change without a restart and a request sees either the old set or the
// new one. It is safe for concurrent use.
type Registry struct {
	set  atomic.Pointer[Set]
	opts Options
}

// NewRegistry returns a Registry holding set (nil means none). Watch loads
// changed files with opts.
func NewRegistry(set *Set, opts Options) *Registry {
	r := &Registry{opts: opts}
	if set == nil {
		set = &Set{}
	}
	r.set.Store(set)
	return r
}

// Set returns the current set.
func (r *Registry) Set() *Set { return r.set.Load() }

// Lookup is Set.Lookup on the current set.
func (r *Registry) Lookup(name string) (*Source, bool) { return r.Set().Lookup(name) }

// Watch reads the sources file at path, and the secret files and
// variables it names, now and then every interval (zero means
// DefaultPollInterval) until ctx is done, and makes the new sources
// current whenever that content differs from the current set's. It
// compares content (SHA-256), not modification times, so a rewrite within
// the clock's granularity, an atomic rename onto path, or a rotated secret
// file is seen.
//
// A file that cannot be read or is invalid leaves the current sources in
// place. report, when not nil, is called from Watch's goroutine after each
// reload attempt: with nil when new sources are current, with the error
// otherwise. An unchanged bad file, or the same read error, is reported
// once. Watch returns when ctx is done; run it in a goroutine the caller
// waits for.
func (r *Registry) Watch(ctx context.Context, path string, interval time.Duration, report func(error)) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	reload.Poll(ctx, interval, reload.Poller{
		Digest: func() ([sha256.Size]byte, error) {
			sum, err := r.contentDigest(path)
			if err != nil {
				return sum, fmt.Errorf("reload sources: %w", err)
			}
			return sum, nil
		},
		Current: func(sum [sha256.Size]byte) bool { return sum == r.Set().digest },
		Load: func() error {
			set, err := Load(path, r.opts)
			if err != nil {
				return fmt.Errorf("reload sources, keeping the current ones: %w", err)
			}
			r.set.Store(set)
			return nil
		},
		Report: report,
	})
}

// contentDigest hashes the sources file and the secrets it names, as
// Parse does, without compiling anything. A file that does not parse
// hashes as its bytes alone, so Load reports why.
func (r *Registry) contentDigest(path string) ([sha256.Size]byte, error) {
	data, err := readFile(path, maxFileSize)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	h := sha256.New()
	h.Write(data)
	fc, err := parseFile(data)
	if err == nil {
		getenv := r.opts.Getenv
		if getenv == nil {
			getenv = defaultGetenv
		}
		sec := secretSource{getenv: getenv, skip: r.opts.SkipSecrets}
		for _, sc := range fc.Sources {
			secrets, err := sec.secrets(sc.Verify)
			if err != nil {
				// Load will say so; make the digest differ from a good set's.
				h.Write([]byte("\x00error\x00" + err.Error()))
				continue
			}
			for _, s := range secrets {
				h.Write([]byte{0})
				h.Write([]byte(s))
			}
		}
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
