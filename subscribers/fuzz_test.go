package subscribers_test

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/subscribers"
)

// codeOf returns the contract error code an error from the parsers carries
// ("code: message").
func codeOf(err error) string {
	code, _, _ := strings.Cut(err.Error(), ": ")
	return code
}

// channelName is the contract's channel name (CONTRACT.md §3), written
// independently of bridge.ValidChannel.
var channelName = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// FuzzChannelsQuery fuzzes the ?channels= list of an upgrade against a
// model: "" is no channel; more than the limit is limit_exceeded; otherwise
// the first name that is not a channel name is bad_request and the first the
// token does not grant is forbidden; an accepted list is returned whole, in
// order.
func FuzzChannelsQuery(f *testing.F) {
	for _, s := range []string{"", "news", "news,prices.eur", "news,,prices", "prices.*", "a b", "news,secret", strings.Repeat("n,", 12) + "news", "prices." + strings.Repeat("x", 130), "news,News", "прайс"} {
		f.Add(s, uint8(4))
	}
	claims := auth.Claims{Subject: "42", Channels: []string{"news", "prices.*"}}
	granted := func(ch string) bool { return ch == "news" || strings.HasPrefix(ch, "prices.") }
	f.Fuzz(func(t *testing.T, list string, limit uint8) {
		max := 1 + int(limit%16)
		got, err := subscribers.ParseChannelsForTest(claims, max, list)
		want := ""
		var parts []string
		if list != "" {
			parts = strings.Split(list, ",")
		}
		if len(parts) > max {
			want = "limit_exceeded"
		}
		for _, ch := range parts {
			if want != "" {
				break
			}
			switch {
			case !channelName.MatchString(ch):
				want = "bad_request"
			case !granted(ch):
				want = "forbidden"
			}
		}
		switch {
		case want == "" && err != nil:
			t.Fatalf("%q (limit %d) refused (%v), want accepted", list, max, err)
		case want != "" && err == nil:
			t.Fatalf("%q (limit %d) accepted as %q, want %s", list, max, got, want)
		case want != "" && codeOf(err) != want:
			t.Fatalf("%q (limit %d) refused with %q, want %s", list, max, err, want)
		case want == "" && !slices.Equal(got, parts):
			t.Fatalf("%q (limit %d) parsed as %q, want %q", list, max, got, parts)
		}
	})
}

// wellFormedOrigin is a serialized origin as browsers send it: scheme,
// "://", a host of one or more non-empty DNS labels, an optional port.
var wellFormedOrigin = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?$`)

// FuzzOriginAllowed fuzzes the Origin matcher for two configured entries.
// The oracle, for every origin: the empty list allows nothing; a list allows
// an origin exactly when one of its entries does; "*" allows any; an entry
// allows itself in any ASCII case; a wildcard entry never allows its apex.
// For a well-formed origin (what a browser sends), read with net/url: an
// entry allows it exactly when it is "*", equal ignoring case, or
// "scheme://*.host" with the same scheme and the origin's host (with its
// port) one or more labels under host.
func FuzzOriginAllowed(f *testing.F) {
	for _, s := range [][3]string{
		{"https://app.example.com", "", "https://app.example.com"},
		{"https://*.example.com", "", "https://a.b.example.com"},
		{"https://*.example.com", "", "https://example.com"},
		{"https://*.example.com", "", "http://a.example.com"},
		{"https://*.example.com", "", "https://a.example.com.evil.net"},
		{"https://*.example.com", "", "https://evil.net/.example.com"},
		{"https://*.example.com:8443", "http://localhost:3000", "https://A.EXAMPLE.COM:8443"},
		{"*", "", "null"},
		{"https://*.", "", "https://a."},
		{"", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, origin string) {
		allowed := func(list []string, o string) bool { return subscribers.OriginAllowedForTest(list, o) }
		got := allowed([]string{a, b}, origin)
		if allowed(nil, origin) {
			t.Fatalf("the empty list allows %q", origin)
		}
		if ga, gb := allowed([]string{a}, origin), allowed([]string{b}, origin); got != (ga || gb) {
			t.Fatalf("[%q %q] allows %q: %v, but alone %v and %v", a, b, origin, got, ga, gb)
		}
		if !allowed([]string{"*"}, origin) {
			t.Fatalf(`"*" refuses %q`, origin)
		}
		for _, e := range []string{a, b} {
			if !allowed([]string{e}, e) || !allowed([]string{e}, asciiUpper(e)) {
				t.Fatalf("%q refuses itself", e)
			}
			if scheme, host, ok := strings.Cut(e, "://*."); ok && !strings.EqualFold(e, scheme+"://"+host) && allowed([]string{e}, scheme+"://"+host) {
				t.Fatalf("%q allows its apex", e)
			}
		}
		if !wellFormedOrigin.MatchString(origin) {
			return
		}
		u, err := url.Parse(origin)
		if err != nil {
			t.Fatalf("well-formed origin %q does not parse: %v", origin, err)
		}
		for _, e := range []string{a, b} {
			if want := entryAllows(e, u, origin); allowed([]string{e}, origin) != want {
				t.Fatalf("%q allows %q: %v, want %v", e, origin, !want, want)
			}
		}
	})
}

// entryAllows is the model of one allowed-origins entry for a well-formed
// origin u (raw as sent).
func entryAllows(e string, u *url.URL, raw string) bool {
	if e == "*" || strings.EqualFold(e, raw) {
		return true
	}
	scheme, host, ok := strings.Cut(e, "://*.")
	if !ok || strings.ToLower(scheme) != strings.ToLower(u.Scheme) {
		return false
	}
	sub, ok := strings.CutSuffix(strings.ToLower(u.Host), "."+strings.ToLower(host))
	return ok && sub != ""
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
