package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"strings"
)

// APIKeys holds the publisher keys. It is safe for concurrent use.
type APIKeys struct {
	keys []apiKey
}

type apiKey struct {
	name string
	hash [sha256.Size]byte
}

// NewAPIKeys returns the set of keys, ignoring blank ones. Keys are named by
// position ("key1", "key2") so logs can say which publisher posted without
// revealing the key.
func NewAPIKeys(keys []string) *APIKeys {
	a := &APIKeys{}
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		a.keys = append(a.keys, apiKey{name: "key" + strconv.Itoa(i+1), hash: sha256.Sum256([]byte(k))})
	}
	return a
}

// Len returns the number of keys.
func (a *APIKeys) Len() int { return len(a.keys) }

// CheckAPIKey reports whether key is one of the keys, and its name. The
// comparison takes the same time whichever key matches, or none.
func (a *APIKeys) CheckAPIKey(key string) (publisher string, ok bool) {
	h := sha256.Sum256([]byte(key))
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			publisher, ok = k.name, true
		}
	}
	return publisher, ok
}
