package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hookwire/hookwire/auth"
)

func TestParseAPIKeys(t *testing.T) {
	k, err := auth.ParseAPIKeys([]string{
		"bare-key-1",
		" ",
		"billing:b1ll1ng-k3y",
		"prices:pr1c3s-k3y:channels=prices.*|news",
		"orders:0rd3rs-k3y:types=order.created|balance.*;channels=user:42:*",
		"all:!\"#$%&'()*+-./;<=>?@[\\]^_`{|}~:types=*",
	}, auth.APIKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.Names(), []string{"key1", "billing", "prices", "orders", "all"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	tests := []struct {
		key      string
		name     string
		channels []string
		types    []string
	}{
		{"bare-key-1", "key1", nil, nil},
		{"b1ll1ng-k3y", "billing", nil, nil},
		{"pr1c3s-k3y", "prices", []string{"prices.*", "news"}, nil},
		{"0rd3rs-k3y", "orders", []string{"user:42:*"}, []string{"order.created", "balance.*"}},
		{"!\"#$%&'()*+-./;<=>?@[\\]^_`{|}~", "all", nil, []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if name, ok := checkKey(k, tt.key); !ok || name != tt.name {
				t.Errorf("checkKey = %q, %v; want %q", name, ok, tt.name)
			}
			p, ok := k.Publisher(tt.key)
			if !ok || p.Name != tt.name || !slices.Equal(p.Channels, tt.channels) || !slices.Equal(p.Types, tt.types) {
				t.Errorf("Publisher = %+v, %v; want %s %v %v", p, ok, tt.name, tt.channels, tt.types)
			}
		})
	}
	for _, bad := range []string{"", "billing", "billing:b1ll1ng-k3y", "b1ll1ng-k3", "b1ll1ng-k3yy", "B1LL1NG-K3Y", " b1ll1ng-k3y"} {
		if _, ok := checkKey(k, bad); ok {
			t.Errorf("%q accepted", bad)
		}
		if _, ok := k.Publisher(bad); ok {
			t.Errorf("Publisher(%q) found", bad)
		}
	}
	// The returned scope is a copy.
	p, _ := k.Publisher("pr1c3s-k3y")
	p.Channels[0] = "*"
	if p2, _ := k.Publisher("pr1c3s-k3y"); p2.Channels[0] != "prices.*" {
		t.Error("Publisher shares its slices")
	}
}

func TestParseAPIKeysErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    string
	}{
		{"space in key", []string{"n:s3cr et"}, "printable ASCII"},
		{"non-ASCII key", []string{"n:sécret"}, "printable ASCII"},
		{"empty key", []string{"n:"}, "printable ASCII"},
		{"empty name", []string{":s3cret"}, "name must be"},
		{"bad name", []string{"bad name:s3cret"}, "name must be"},
		{"empty scope", []string{"n:s3cret:"}, "scope is empty"},
		{"scope without =", []string{"n:s3cret:prices"}, "not name=patterns"},
		{"unknown scope field", []string{"n:s3cret:users=1"}, "unknown name"},
		{"repeated scope field", []string{"n:s3cret:types=a;types=b"}, "repeated"},
		{"empty pattern list", []string{"n:s3cret:channels="}, "invalid pattern"},
		{"empty pattern", []string{"n:s3cret:channels=a||b"}, "invalid pattern"},
		{"bad channel pattern", []string{"n:s3cret:channels=a*b"}, "invalid pattern"},
		{"channel with space", []string{"n:s3cret:channels=a b"}, "invalid pattern"},
		{"type with =", []string{"n:s3cret:types=a=b"}, "invalid pattern"},
		{"trailing ;", []string{"n:s3cret:types=a;"}, "not name=patterns"},
		{"duplicate name", []string{"n:s3cret1", "n:s3cret2"}, "used twice"},
		{"duplicate key", []string{"a:s3cret", "b:s3cret"}, "same key"},
		{"bare duplicate key", []string{"s3cret", "s3cret"}, "same key"},
		{"default name taken", []string{"key2:s3cret1", "s3cret2"}, "used twice"},
		{"too short", []string{"n:s3cret"}, "shorter than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := auth.APIKeyOptions{}
			if tt.name == "too short" {
				opts.MinKeyLen = 32
			}
			_, err := auth.ParseAPIKeys(tt.entries, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			for _, secret := range []string{"s3cret", "s3cr et", "sécret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q echoes a key", err)
				}
			}
		})
	}
	// A key that wrongly contains ':' lands in the scope: not echoed.
	_, err := auth.ParseAPIKeys([]string{"n:k3y:s3cr3t-part"}, auth.APIKeyOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cr3t-part") {
		t.Errorf("error = %v", err)
	}
}

func TestPublisherAllows(t *testing.T) {
	tests := []struct {
		name    string
		p       auth.Publisher
		channel string
		typ     string
		want    bool
	}{
		{"no scope, channel", auth.Publisher{}, "prices.EURUSD", "tick", true},
		{"no scope, users only", auth.Publisher{}, "", "balance.updated", true},
		{"channel prefix", auth.Publisher{Channels: []string{"prices.*", "news"}}, "prices.EURUSD", "tick", true},
		{"channel exact", auth.Publisher{Channels: []string{"prices.*", "news"}}, "news", "x", true},
		{"channel outside", auth.Publisher{Channels: []string{"prices.*", "news"}}, "news.sports", "x", false},
		{"channel scope, users only", auth.Publisher{Channels: []string{"*"}}, "", "x", false},
		{"channel *", auth.Publisher{Channels: []string{"*"}}, "anything", "x", true},
		{"type prefix", auth.Publisher{Types: []string{"balance.*"}}, "", "balance.updated", true},
		{"type outside", auth.Publisher{Types: []string{"balance.*"}}, "", "order.created", false},
		{"type exact, not prefix", auth.Publisher{Types: []string{"order.created"}}, "", "order.created.v2", false},
		{"both match", auth.Publisher{Channels: []string{"user:42:*"}, Types: []string{"order.created"}}, "user:42:orders", "order.created", true},
		{"both, type outside", auth.Publisher{Channels: []string{"user:42:*"}, Types: []string{"order.created"}}, "user:42:orders", "order.cancelled", false},
		{"both, channel outside", auth.Publisher{Channels: []string{"user:42:*"}, Types: []string{"order.created"}}, "user:43:orders", "order.created", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Allows(tt.channel, tt.typ); got != tt.want {
				t.Errorf("Allows(%q, %q) = %v, want %v", tt.channel, tt.typ, got, tt.want)
			}
		})
	}
}

func TestNilAPIKeysAcceptNothing(t *testing.T) {
	var nilKeys *auth.APIKeys
	if _, ok := checkKey(nilKeys, "x"); ok || nilKeys.Len() != 0 {
		t.Error("nil APIKeys accepts keys")
	}
}

// checkKey returns the name of key's publisher in k.
func checkKey(k interface {
	Publisher(string) (auth.Publisher, bool)
}, key string) (string, bool) {
	p, ok := k.Publisher(key)
	return p.Name, ok
}

// bareKeys parses entries as configuration does, without a minimum length.
func bareKeys(t *testing.T, entries []string) *auth.APIKeys {
	t.Helper()
	k, err := auth.ParseAPIKeys(entries, auth.APIKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write to a temporary file and rename, as operators should.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAPIKeysFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	writeFile(t, path, "# publishers\n\nbilling:b1ll1ng-k3y\r\n  prices:pr1c3s-k3y:channels=prices.*  \nbare-1, bare-2\n")
	k, err := auth.LoadAPIKeysFile(path, auth.APIKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.Names(), []string{"billing", "prices", "key3", "key4"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if p, ok := k.Publisher("pr1c3s-k3y"); !ok || !p.Allows("prices.X", "t") || p.Allows("news", "t") {
		t.Errorf("prices = %+v, %v", p, ok)
	}
	if name, ok := checkKey(k, "bare-2"); !ok || name != "key4" {
		t.Errorf("bare-2 = %q, %v", name, ok)
	}

	for content, want := range map[string]string{
		"# only a comment\n\n":    "no API keys",
		"ok:k3y\nbad name:k3y2\n": "line 2",
	} {
		writeFile(t, path, content)
		if _, err := auth.LoadAPIKeysFile(path, auth.APIKeyOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadAPIKeysFile(%q) error = %v, want one containing %q", content, err, want)
		}
	}
	if _, err := auth.LoadAPIKeysFile(filepath.Join(dir, "missing"), auth.APIKeyOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	writeFile(t, path, strings.Repeat("k", 1<<20+1))
	if _, err := auth.LoadAPIKeysFile(path, auth.APIKeyOptions{}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
}

// reports collects what Watch reports.
type reports struct {
	mu   sync.Mutex
	errs []error
}

func (r *reports) report(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// take returns and clears the reports so far.
func (r *reports) take() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := r.errs
	r.errs = nil
	return errs
}

func TestKeyRingWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		writeFile(t, path, "a:k3y-a\n")
		keys, err := auth.LoadAPIKeysFile(path, auth.APIKeyOptions{MinKeyLen: 5})
		if err != nil {
			t.Fatal(err)
		}
		ring := auth.NewKeyRing(keys, auth.APIKeyOptions{MinKeyLen: 5})
		var rep reports
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			ring.Watch(ctx, path, time.Second, rep.report)
		}()
		tick := func() {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		synctest.Wait()
		if errs := rep.take(); len(errs) != 0 {
			t.Fatalf("unchanged file reported %v", errs)
		}

		// Rotation: b is added, a removed; the ring swaps at the next poll.
		writeFile(t, path, "b:k3y-b\n")
		if _, ok := checkKey(ring, "k3y-a"); !ok {
			t.Fatal("swapped before the poll")
		}
		tick()
		if errs := rep.take(); len(errs) != 1 || errs[0] != nil {
			t.Fatalf("reports = %v, want one nil", errs)
		}
		if _, ok := checkKey(ring, "k3y-a"); ok {
			t.Error("removed key still accepted")
		}
		if name, ok := checkKey(ring, "k3y-b"); !ok || name != "b" {
			t.Errorf("new key = %q, %v", name, ok)
		}

		// A bad file keeps the current keys and is reported once.
		writeFile(t, path, "c:k3y\n") // shorter than MinKeyLen
		tick()
		tick()
		if errs := rep.take(); len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "shorter than") {
			t.Fatalf("reports = %v, want one error", errs)
		}
		if _, ok := checkKey(ring, "k3y-b"); !ok {
			t.Error("a bad file dropped the current keys")
		}

		// A missing file too.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		tick()
		tick()
		if errs := rep.take(); len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
			t.Fatalf("reports = %v, want one ErrNotExist", errs)
		}
		if ring.Len() != 1 {
			t.Errorf("Len = %d after the file vanished", ring.Len())
		}

		// A fixed file is loaded.
		writeFile(t, path, "d:k3y-d\n")
		tick()
		if errs := rep.take(); len(errs) != 1 || errs[0] != nil {
			t.Fatalf("reports = %v, want one nil", errs)
		}
		if p, ok := ring.Publisher("k3y-d"); !ok || p.Name != "d" {
			t.Errorf("Publisher = %+v, %v", p, ok)
		}

		// Content is compared, not metadata: a rewrite of the same size
		// with the old modification time is still seen.
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "e:k3y-e\n")
		if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		tick()
		if _, ok := checkKey(ring, "k3y-e"); !ok || len(rep.take()) != 1 {
			t.Error("same-size rewrite with the old mtime not loaded")
		}

		cancel()
		<-done
	})
}

func TestKeyRingStore(t *testing.T) {
	ring := auth.NewKeyRing(nil, auth.APIKeyOptions{})
	if _, ok := checkKey(ring, ""); ok || ring.Len() != 0 {
		t.Fatal("empty ring accepts a key")
	}
	ring.Store(bareKeys(t, []string{"x"}))
	if _, ok := checkKey(ring, "x"); !ok {
		t.Error("stored key refused")
	}
}
