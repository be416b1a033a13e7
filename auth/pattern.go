package auth

import "strings"

// maxPatternLen bounds a channel name or event type in a pattern, as the
// contract bounds them (1..128).
const maxPatternLen = 128

// ValidPattern reports whether p is a channel pattern: a channel name, or a
// possibly empty prefix of one followed by "*".
func ValidPattern(p string) bool {
	return validPattern(p, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
	})
}

// validPattern reports whether p is 1..maxPatternLen bytes for which ok
// holds, or a possibly empty prefix of such followed by "*".
func validPattern(p string, ok func(byte) bool) bool {
	name, wild := strings.CutSuffix(p, "*")
	if wild && name == "" {
		return true
	}
	if len(name) == 0 || len(name) > maxPatternLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !ok(name[i]) {
			return false
		}
	}
	return true
}

// validTypePattern reports whether p is an event type pattern in an API key
// scope: an event type of 1..128 printable ASCII characters other than space
// and the scope separators `*|;,=`, or a possibly empty prefix of one
// followed by "*".
func validTypePattern(p string) bool {
	return validPattern(p, func(c byte) bool {
		return c > ' ' && c <= '~' && strings.IndexByte("*|;,=", c) < 0
	})
}

// matchAny reports whether one of patterns grants s: an exact match, or a
// prefix match for a pattern ending in "*".
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		} else if p == s {
			return true
		}
	}
	return false
}

// ChannelAllowed reports whether one of c.Channels grants channel: an exact
// match, or a prefix match for a pattern ending in "*".
func (c Claims) ChannelAllowed(channel string) bool { return matchAny(c.Channels, channel) }
