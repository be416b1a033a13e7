package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// APIKeys holds the publisher keys. It is immutable and safe for concurrent
// use; a KeyRing swaps whole sets to rotate keys.
//
// Configuration entries have one of three forms:
//
//	key
//	name:key
//	name:key:scope
//
// A key is 1 or more printable ASCII characters (0x21..0x7E) other than ':'
// and ','. A name is 1..64 characters of [A-Za-z0-9._-]; an entry without
// one is named "key<n>", n being its 1-based position. The scope is one or
// two fields separated by ';', each a field name, '=', and '|'-separated
// patterns:
//
//	channels=prices.*|news      channels the key may publish to
//	types=balance.*|order.created  event types the key may publish
//
// A pattern is exact or a prefix ending in '*' ("*" alone allows all).
// Channel patterns follow ValidPattern; type patterns are 1..128 printable
// ASCII characters other than space and `*|;,=`, plus the optional final
// '*'. Everything after the second ':' is the scope, so channel patterns may
// contain ':' ("billing:k3y:channels=user:42:*"). An entry is parsed as a
// whole: surrounding spaces are trimmed, inner ones are errors.
//
// HOOKWIRE_API_KEYS is split on ',' by the caller and given to
// ParseAPIKeys; a file (LoadAPIKeysFile) holds entries on lines or comma
// separated, with blank lines and lines starting with '#' ignored.
type APIKeys struct {
	keys []apiKey
	// digest is the SHA-256 of the file the set was loaded from, so that
	// KeyRing.Watch reloads only what changed. Zero for other sets.
	digest   [sha256.Size]byte
	fromFile bool
}

type apiKey struct {
	hash [sha256.Size]byte
	pub  Publisher
}

// APIKeyOptions configure the parsing of API key entries.
type APIKeyOptions struct {
	// MinKeyLen, when positive, is the shortest key accepted, in
	// characters. Production passes 32.
	MinKeyLen int
}

// Publisher is the holder of an API key: its name, safe to log, and its
// scope. Empty Channels or Types mean no restriction on that field.
type Publisher struct {
	Name     string
	Channels []string
	Types    []string
}

// Allows reports whether p may publish an event of type eventType to
// channel. channel is "" for an event addressed to users only; a publisher
// with a channel scope may not send those.
func (p Publisher) Allows(channel, eventType string) bool {
	if len(p.Types) > 0 && !matchAny(p.Types, eventType) {
		return false
	}
	if len(p.Channels) > 0 && (channel == "" || !matchAny(p.Channels, channel)) {
		return false
	}
	return true
}

// ParseAPIKeys parses entries (see APIKeys for their syntax), skipping
// blank ones; a bare key is named after its 1-based index in entries. Two
// entries with the same name or the same key are an error. Errors name the
// entry by position and name, never by key.
func ParseAPIKeys(entries []string, opts APIKeyOptions) (*APIKeys, error) {
	a := &APIKeys{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if err := a.add(e, i+1, opts); err != nil {
			return nil, fmt.Errorf("API key entry %d: %w", i+1, err)
		}
	}
	return a, nil
}

// maxKeysFile caps an API keys file.
const maxKeysFile = 1 << 20

// LoadAPIKeysFile reads and parses the API keys file at path: entries (see
// APIKeys) on separate lines or comma separated, blank lines and lines
// starting with '#' ignored, at most 1 MiB. A file without entries is an
// error, so that a truncated write cannot revoke every key. A bare key is
// named after its 1-based position among the file's entries.
func LoadAPIKeysFile(path string, opts APIKeyOptions) (*APIKeys, error) {
	data, err := readKeysFile(path)
	if err != nil {
		return nil, err
	}
	a, err := parseKeysFile(data, opts)
	if err != nil {
		return nil, fmt.Errorf("API keys file %s: %w", path, err)
	}
	return a, nil
}

// readKeysFile returns the content of path, at most maxKeysFile bytes.
func readKeysFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeysFile {
		return nil, fmt.Errorf("API keys file %s is larger than %d bytes", path, maxKeysFile)
	}
	return data, nil
}

// parseKeysFile parses the content of an API keys file.
func parseKeysFile(data []byte, opts APIKeyOptions) (*APIKeys, error) {
	a := &APIKeys{digest: sha256.Sum256(data), fromFile: true}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, e := range strings.Split(line, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			n++
			if err := a.add(e, n, opts); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
		}
	}
	if n == 0 {
		return nil, errors.New("no API keys")
	}
	return a, nil
}

// add parses entry, the pos-th, and adds it to a.
func (a *APIKeys) add(entry string, pos int, opts APIKeyOptions) error {
	key, pub, err := parseEntry(entry, pos)
	if err != nil {
		return err
	}
	if opts.MinKeyLen > 0 && len(key) < opts.MinKeyLen {
		return fmt.Errorf("key %q is shorter than %d characters", pub.Name, opts.MinKeyLen)
	}
	h := sha256.Sum256([]byte(key))
	for _, k := range a.keys {
		if k.pub.Name == pub.Name {
			return fmt.Errorf("name %q is used twice", pub.Name)
		}
		if k.hash == h {
			return fmt.Errorf("key %q has the same key as %q", pub.Name, k.pub.Name)
		}
	}
	a.keys = append(a.keys, apiKey{hash: h, pub: pub})
	return nil
}

// parseEntry parses one entry, the pos-th; see APIKeys.
func parseEntry(entry string, pos int) (string, Publisher, error) {
	parts := strings.SplitN(entry, ":", 3)
	var (
		pub Publisher
		key string
	)
	if len(parts) == 1 {
		pub.Name, key = defaultKeyName(pos), parts[0]
	} else {
		pub.Name, key = parts[0], parts[1]
		if !validKeyName(pub.Name) {
			return "", Publisher{}, errors.New("name must be 1..64 characters of A-Z a-z 0-9 . _ -")
		}
	}
	if !validKey(key) {
		return "", Publisher{}, fmt.Errorf("key %q must be printable ASCII without spaces, ':' or ','", pub.Name)
	}
	if len(parts) == 3 {
		var err error
		if pub.Channels, pub.Types, err = parseScope(parts[2]); err != nil {
			return "", Publisher{}, fmt.Errorf("key %q: %w", pub.Name, err)
		}
	}
	return key, pub, nil
}

// parseScope parses "channels=a|b;types=c|d" (either field, in any order).
func parseScope(scope string) (channels, types []string, err error) {
	if scope == "" {
		return nil, nil, errors.New("scope is empty")
	}
	// Unknown text is not echoed: a key containing ':' would land here.
	for i, field := range strings.Split(scope, ";") {
		name, list, ok := strings.Cut(field, "=")
		if !ok {
			return nil, nil, fmt.Errorf("scope field %d is not name=patterns", i+1)
		}
		var (
			dst   *[]string
			valid func(string) bool
		)
		switch name {
		case "channels":
			dst, valid = &channels, ValidPattern
		case "types":
			dst, valid = &types, validTypePattern
		default:
			return nil, nil, fmt.Errorf("scope field %d has an unknown name: want channels or types", i+1)
		}
		if *dst != nil {
			return nil, nil, fmt.Errorf("scope field %q is repeated", name)
		}
		patterns := strings.Split(list, "|")
		for _, p := range patterns {
			if !valid(p) {
				return nil, nil, fmt.Errorf("scope field %q has an invalid pattern %q", name, p)
			}
		}
		*dst = patterns
	}
	return channels, types, nil
}

func defaultKeyName(pos int) string { return "key" + strconv.Itoa(pos) }

// validKeyName reports whether s is a key name: 1..64 of [A-Za-z0-9._-].
func validKeyName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validKey reports whether s is a key: printable ASCII but ':' and ','.
func validKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ':' || c == ',' {
			return false
		}
	}
	return true
}

// Len returns the number of keys.
func (a *APIKeys) Len() int {
	if a == nil {
		return 0
	}
	return len(a.keys)
}

// Names returns the publishers' names in configuration order.
func (a *APIKeys) Names() []string {
	if a == nil {
		return nil
	}
	names := make([]string, len(a.keys))
	for i, k := range a.keys {
		names[i] = k.pub.Name
	}
	return names
}

// lookup returns the index of key in a.keys, or -1. It compares key's hash
// with every stored hash and selects without branching, so the time taken
// does not depend on which key matches, or whether one does.
func (a *APIKeys) lookup(key string) int {
	if a == nil {
		return -1
	}
	h := sha256.Sum256([]byte(key))
	idx := -1
	for i := range a.keys {
		eq := subtle.ConstantTimeCompare(h[:], a.keys[i].hash[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
	}
	return idx
}

// Publisher returns the holder of key, with its scope; the comparison
// takes the same time whichever key matches, or none. The returned slices are the caller's.
func (a *APIKeys) Publisher(key string) (Publisher, bool) {
	i := a.lookup(key)
	if i < 0 {
		return Publisher{}, false
	}
	p := a.keys[i].pub
	p.Channels, p.Types = slices.Clone(p.Channels), slices.Clone(p.Types)
	return p, true
}
