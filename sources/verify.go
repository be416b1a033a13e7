package sources

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrUnverified is matched (errors.Is) by every signature rejection: the
// HTTP edge answers 401 and appends nothing.
var ErrUnverified = errors.New("webhook not verified")

// A Rejection says why a webhook was not verified. Reason is a short
// label for metrics; Detail is safe to show the sender (it never holds a
// secret or an expected signature).
type Rejection struct {
	Reason string // missing_signature, malformed_signature, stale_timestamp, bad_signature
	Detail string
}

// Rejection reasons.
const (
	ReasonMissing   = "missing_signature"
	ReasonMalformed = "malformed_signature"
	ReasonStale     = "stale_timestamp"
	ReasonBad       = "bad_signature"
)

func (r *Rejection) Error() string { return "webhook not verified: " + r.Detail }

// Is makes errors.Is(r, ErrUnverified) hold.
func (r *Rejection) Is(target error) bool { return target == ErrUnverified }

func reject(reason, format string, args ...any) error {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Schemes (CONTRACT.md §6).
const (
	SchemeStripe           = "stripe"
	SchemeGitHub           = "github"
	SchemeShopify          = "shopify"
	SchemeSlack            = "slack"
	SchemeStandardWebhooks = "standard-webhooks"
	SchemeHMAC             = "hmac"
)

// Provider headers.
const (
	headerStripeSignature = "Stripe-Signature"
	headerGitHubSignature = "X-Hub-Signature-256"
	headerGitHubDelivery  = "X-GitHub-Delivery"
	headerShopifyHMAC     = "X-Shopify-Hmac-Sha256"
	headerShopifyID       = "X-Shopify-Webhook-Id"
	headerSlackSignature  = "X-Slack-Signature"
	headerSlackTimestamp  = "X-Slack-Request-Timestamp"
	headerWebhookID       = "webhook-id"
	headerWebhookTS       = "webhook-timestamp"
	headerWebhookSig      = "webhook-signature"
)

const (
	// maxSignatures bounds the signatures of one header, so a request
	// cannot make verification expensive.
	maxSignatures = 32
	// maxDeliveryID bounds a delivery id taken from a header.
	maxDeliveryID = 256
	// minStandardSecret is the shortest whsec_ key: 128 bits.
	minStandardSecret = 16
)

// verifier checks one source's signatures. It is immutable.
type verifier struct {
	scheme    string
	keys      [][]byte            // HMAC keys, in configuration order
	edKeys    []ed25519.PublicKey // standard-webhooks v1a
	tolerance time.Duration
	// hmac scheme
	header   string
	newHash  func() hash.Hash
	base64   bool
	prefix   string
	idHeader string
}

// newVerifier checks v and its secrets for scheme v.Scheme.
func newVerifier(v verifyConfig, secrets []string, skipSecrets bool) (*verifier, error) {
	vf := &verifier{scheme: v.Scheme}
	timestamped := false
	switch v.Scheme {
	case SchemeStripe, SchemeSlack, SchemeStandardWebhooks:
		timestamped = true
	case SchemeGitHub, SchemeShopify, SchemeHMAC:
	case "":
		return nil, errors.New("verify.scheme is required")
	default:
		return nil, fmt.Errorf("verify.scheme: unknown scheme %q (want stripe, github, shopify, slack, standard-webhooks or hmac)", v.Scheme)
	}
	var err error
	if vf.tolerance, err = tolerance(v, timestamped); err != nil {
		return nil, err
	}
	if v.Scheme == SchemeHMAC {
		if err := vf.hmacSettings(v); err != nil {
			return nil, err
		}
	} else {
		for field, val := range map[string]string{"header": v.Header, "algorithm": v.Algorithm, "encoding": v.Encoding, "prefix": v.Prefix, "id_header": v.IDHeader} {
			if val != "" {
				return nil, fmt.Errorf("verify.%s: only the hmac scheme has this setting", field)
			}
		}
	}
	if skipSecrets {
		return vf, nil
	}
	for i, s := range secrets {
		if err := vf.addSecret(s); err != nil {
			return nil, fmt.Errorf("verify: secret %d: %w", i+1, err)
		}
	}
	return vf, nil
}

func (vf *verifier) hmacSettings(v verifyConfig) error {
	if v.Header == "" {
		return errors.New("verify.header is required for the hmac scheme")
	}
	if !headerRE.MatchString(v.Header) {
		return fmt.Errorf("verify.header: %q is not a header name", v.Header)
	}
	vf.header = v.Header
	switch strings.ToLower(v.Algorithm) {
	case "", "sha256":
		vf.newHash = sha256.New
	case "sha512":
		vf.newHash = sha512.New
	case "sha1":
		vf.newHash = sha1.New
	default:
		return fmt.Errorf("verify.algorithm: %q is not sha256, sha512 or sha1", v.Algorithm)
	}
	switch strings.ToLower(v.Encoding) {
	case "", "hex":
	case "base64":
		vf.base64 = true
	default:
		return fmt.Errorf("verify.encoding: %q is not hex or base64", v.Encoding)
	}
	if len(v.Prefix) > 64 || strings.ContainsFunc(v.Prefix, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return errors.New("verify.prefix: must be at most 64 printable ASCII characters without spaces")
	}
	vf.prefix = v.Prefix
	if v.IDHeader != "" && !headerRE.MatchString(v.IDHeader) {
		return fmt.Errorf("verify.id_header: %q is not a header name", v.IDHeader)
	}
	vf.idHeader = v.IDHeader
	return nil
}

// addSecret adds one configured secret. Errors never echo it.
func (vf *verifier) addSecret(s string) error {
	switch vf.scheme {
	case SchemeStripe:
		if !strings.HasPrefix(s, "whsec_") {
			return errors.New(`a Stripe endpoint secret starts with "whsec_"`)
		}
		vf.keys = append(vf.keys, []byte(s)) // the whole string is the key
	case SchemeStandardWebhooks:
		switch {
		case strings.HasPrefix(s, "whsec_"):
			key, err := base64.StdEncoding.DecodeString(s[len("whsec_"):])
			if err != nil {
				return errors.New(`is not "whsec_" followed by standard base64`)
			}
			if len(key) < minStandardSecret {
				return fmt.Errorf("is %d bytes, fewer than %d", len(key), minStandardSecret)
			}
			vf.keys = append(vf.keys, key)
		case strings.HasPrefix(s, "whpk_"):
			key, err := base64.StdEncoding.DecodeString(s[len("whpk_"):])
			if err != nil || len(key) != ed25519.PublicKeySize {
				return fmt.Errorf(`is not "whpk_" followed by the standard base64 of a %d-byte Ed25519 public key`, ed25519.PublicKeySize)
			}
			vf.edKeys = append(vf.edKeys, ed25519.PublicKey(key))
		case strings.HasPrefix(s, "whsk_"):
			return errors.New(`is a signing key ("whsk_"); configure the sender's public key ("whpk_")`)
		default:
			return errors.New(`must start with "whsec_" (HMAC) or "whpk_" (Ed25519 public key)`)
		}
	default:
		vf.keys = append(vf.keys, []byte(s))
	}
	return nil
}

// verify checks h and body, the raw body byte for byte, and returns the
// delivery id a header carries ("" when the scheme's id is in the body).
func (vf *verifier) verify(h http.Header, body []byte, now time.Time) (string, error) {
	switch vf.scheme {
	case SchemeStripe:
		return "", vf.verifyStripe(h, body, now)
	case SchemeGitHub:
		if err := vf.verifyBodyMAC(h, body, headerGitHubSignature, sha256.New, "sha256=", false); err != nil {
			return "", err
		}
		return deliveryHeader(h, headerGitHubDelivery), nil
	case SchemeShopify:
		if err := vf.verifyBodyMAC(h, body, headerShopifyHMAC, sha256.New, "", true); err != nil {
			return "", err
		}
		return deliveryHeader(h, headerShopifyID), nil
	case SchemeSlack:
		return "", vf.verifySlack(h, body, now)
	case SchemeStandardWebhooks:
		return vf.verifyStandard(h, body, now)
	case SchemeHMAC:
		if err := vf.verifyBodyMAC(h, body, vf.header, vf.newHash, vf.prefix, vf.base64); err != nil {
			return "", err
		}
		if vf.idHeader != "" {
			return deliveryHeader(h, vf.idHeader), nil
		}
		return "", nil
	}
	return "", reject(ReasonBad, "unknown scheme")
}

// singleHeader returns the one value of header name.
func singleHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0 || vs[0] == "":
		return "", reject(ReasonMissing, "the %s header is missing", name)
	case len(vs) > 1:
		return "", reject(ReasonMalformed, "the %s header is repeated", name)
	}
	return vs[0], nil
}

// deliveryHeader returns a header's delivery id, "" when it is absent or
// not a usable id.
func deliveryHeader(h http.Header, name string) string {
	vs := h.Values(name)
	if len(vs) != 1 || !validDeliveryID(vs[0]) {
		return ""
	}
	return vs[0]
}

// validDeliveryID: 1..maxDeliveryID bytes of UTF-8 without control
// characters.
func validDeliveryID(id string) bool {
	if id == "" || len(id) > maxDeliveryID || !utf8.ValidString(id) {
		return false
	}
	return !strings.ContainsFunc(id, unicode.IsControl)
}

// anyMAC reports whether one of sigs is mac(key) for one of keys. Every
// pair is compared, in constant time, whatever matches.
func anyMAC(keys [][]byte, newHash func() hash.Hash, sigs [][]byte, parts ...[]byte) bool {
	ok := false
	for _, k := range keys {
		m := hmac.New(newHash, k)
		for _, p := range parts {
			m.Write(p)
		}
		sum := m.Sum(nil)
		for _, s := range sigs {
			ok = hmac.Equal(s, sum) || ok
		}
	}
	return ok
}

// checkTime refuses a timestamp more than tol away from now.
func checkTime(at, now time.Time, tol time.Duration) error {
	if now.Sub(at) > tol {
		return reject(ReasonStale, "the timestamp is older than %s", tol)
	}
	if at.Sub(now) > tol {
		return reject(ReasonStale, "the timestamp is more than %s in the future", tol)
	}
	return nil
}

// parseUnix parses a canonical decimal Unix time in seconds.
func parseUnix(s string) (time.Time, bool) {
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != s {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// --- Stripe ---

// stripeSignature is a parsed Stripe-Signature header.
type stripeSignature struct {
	t    int64
	sigs [][]byte
}

// parseStripeSignature parses "t=<unix>,v1=<hex>[,v1=<hex>…]" as Stripe's
// libraries do: comma-separated key=value pairs, each with exactly one
// '='; the last t counts; v1 values that are not hex, and unknown keys
// (v0), are skipped; at least one v1 and a t are required.
func parseStripeSignature(v string) (stripeSignature, error) {
	var (
		s    stripeSignature
		hasT bool
	)
	pairs := strings.Split(v, ",")
	if len(pairs) > 2*maxSignatures {
		return s, reject(ReasonMalformed, "the %s header has too many entries", headerStripeSignature)
	}
	for _, p := range pairs {
		k, val, ok := strings.Cut(p, "=")
		if !ok || strings.Contains(val, "=") {
			return s, reject(ReasonMalformed, "the %s header is not t=<unix>,v1=<hex>", headerStripeSignature)
		}
		switch k {
		case "t":
			t, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return s, reject(ReasonMalformed, "the %s header's t is not a Unix time", headerStripeSignature)
			}
			s.t, hasT = t, true
		case "v1":
			sig, err := hex.DecodeString(val)
			if err != nil {
				continue
			}
			s.sigs = append(s.sigs, sig)
		}
	}
	switch {
	case !hasT:
		return s, reject(ReasonMalformed, "the %s header has no t", headerStripeSignature)
	case len(s.sigs) == 0:
		return s, reject(ReasonMalformed, "the %s header has no v1 signature", headerStripeSignature)
	}
	return s, nil
}

func (vf *verifier) verifyStripe(h http.Header, body []byte, now time.Time) error {
	v, err := singleHeader(h, headerStripeSignature)
	if err != nil {
		return err
	}
	s, err := parseStripeSignature(v)
	if err != nil {
		return err
	}
	if err := checkTime(time.Unix(s.t, 0), now, vf.tolerance); err != nil {
		return err
	}
	// The signed text is "<t>.<body>" with t as Stripe formats it.
	if !anyMAC(vf.keys, sha256.New, s.sigs, []byte(strconv.FormatInt(s.t, 10)), []byte{'.'}, body) {
		return reject(ReasonBad, "no valid v1 signature")
	}
	return nil
}

// --- GitHub, Shopify, hmac: a MAC of the body in one header ---

// parseMACHeader decodes a header holding prefix followed by the hex (or
// standard base64) of a size-byte MAC.
func parseMACHeader(v, prefix string, b64 bool, size int) ([]byte, error) {
	enc, ok := strings.CutPrefix(v, prefix)
	if !ok {
		return nil, fmt.Errorf("does not start with %q", prefix)
	}
	var (
		sig []byte
		err error
	)
	if b64 {
		sig, err = base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil || strings.ContainsAny(enc, "\r\n") {
			return nil, errors.New("is not standard base64")
		}
	} else {
		sig, err = hex.DecodeString(enc)
		if err != nil {
			return nil, errors.New("is not hex")
		}
	}
	if len(sig) != size {
		return nil, fmt.Errorf("is not a %d-byte signature", size)
	}
	return sig, nil
}

func (vf *verifier) verifyBodyMAC(h http.Header, body []byte, header string, newHash func() hash.Hash, prefix string, b64 bool) error {
	v, err := singleHeader(h, header)
	if err != nil {
		return err
	}
	sig, err := parseMACHeader(v, prefix, b64, newHash().Size())
	if err != nil {
		return reject(ReasonMalformed, "the %s header %s", header, err)
	}
	if !anyMAC(vf.keys, newHash, [][]byte{sig}, body) {
		return reject(ReasonBad, "the %s signature does not match", header)
	}
	return nil
}

// --- Slack ---

// parseSlackSignature decodes "v0=<64 hex digits>".
func parseSlackSignature(v string) ([]byte, error) {
	sig, err := parseMACHeader(v, "v0=", false, sha256.Size)
	if err != nil {
		return nil, reject(ReasonMalformed, "the %s header %s", headerSlackSignature, err)
	}
	return sig, nil
}

func (vf *verifier) verifySlack(h http.Header, body []byte, now time.Time) error {
	ts, err := singleHeader(h, headerSlackTimestamp)
	if err != nil {
		return err
	}
	at, ok := parseUnix(ts)
	if !ok {
		return reject(ReasonMalformed, "the %s header is not a Unix time in seconds", headerSlackTimestamp)
	}
	v, err := singleHeader(h, headerSlackSignature)
	if err != nil {
		return err
	}
	sig, err := parseSlackSignature(v)
	if err != nil {
		return err
	}
	if err := checkTime(at, now, vf.tolerance); err != nil {
		return err
	}
	if !anyMAC(vf.keys, sha256.New, [][]byte{sig}, []byte("v0:"), []byte(ts), []byte{':'}, body) {
		return reject(ReasonBad, "the %s signature does not match", headerSlackSignature)
	}
	return nil
}

// --- Standard Webhooks ---

// parseStandardSignatures returns the v1 (HMAC-SHA256) and v1a (Ed25519)
// signatures of webhook-signature values: space-separated
// "<version>,<base64>" entries (several header lines count as one list).
// Entries of other versions, and entries that are not the canonical
// base64 of a signature of the right size, are skipped, as the
// specification lets senders add schemes a receiver does not know.
func parseStandardSignatures(values []string) (v1, v1a [][]byte, err error) {
	n := 0
	for _, v := range values {
		for _, e := range strings.Split(v, " ") {
			if e == "" {
				continue
			}
			if n++; n > maxSignatures {
				return nil, nil, reject(ReasonMalformed, "the %s header has more than %d entries", headerWebhookSig, maxSignatures)
			}
			version, b64, ok := strings.Cut(e, ",")
			if !ok {
				continue
			}
			size := 0
			switch version {
			case "v1":
				size = sha256.Size
			case "v1a":
				size = ed25519.SignatureSize
			default:
				continue
			}
			if len(b64) != base64.StdEncoding.EncodedLen(size) {
				continue
			}
			sig, err := base64.StdEncoding.Strict().DecodeString(b64)
			if err != nil || len(sig) != size {
				continue
			}
			if version == "v1" {
				v1 = append(v1, sig)
			} else {
				v1a = append(v1a, sig)
			}
		}
	}
	if n == 0 {
		return nil, nil, reject(ReasonMissing, "the %s header is missing", headerWebhookSig)
	}
	return v1, v1a, nil
}

func (vf *verifier) verifyStandard(h http.Header, body []byte, now time.Time) (string, error) {
	id, err := singleHeader(h, headerWebhookID)
	if err != nil {
		return "", err
	}
	if !validDeliveryID(id) {
		return "", reject(ReasonMalformed, "webhook-id is longer than %d bytes or has control characters", maxDeliveryID)
	}
	ts, err := singleHeader(h, headerWebhookTS)
	if err != nil {
		return "", err
	}
	at, ok := parseUnix(ts)
	if !ok {
		return "", reject(ReasonMalformed, "webhook-timestamp is not a Unix time in seconds")
	}
	v1, v1a, err := parseStandardSignatures(h.Values(headerWebhookSig))
	if err != nil {
		return "", err
	}
	if err := checkTime(at, now, vf.tolerance); err != nil {
		return "", err
	}
	ok = anyMAC(vf.keys, sha256.New, v1, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, body)
	if len(v1a) > 0 && len(vf.edKeys) > 0 {
		msg := make([]byte, 0, len(id)+len(ts)+2+len(body))
		msg = append(append(append(append(append(msg, id...), '.'), ts...), '.'), body...)
		for _, k := range vf.edKeys {
			for _, s := range v1a {
				ok = ed25519.Verify(k, msg, s) || ok
			}
		}
	}
	if !ok {
		return "", reject(ReasonBad, "no valid signature")
	}
	return id, nil
}
