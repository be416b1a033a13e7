package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidSignature is wrapped by every Standard Webhooks rejection. The
// wrapped text says why (missing header, bad timestamp, too old, no valid
// signature) and is safe to show the client.
var ErrInvalidSignature = errors.New("invalid webhook signature")

// The Standard Webhooks headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// DefaultWebhookTolerance is how far a webhook-timestamp may be from now, in
// either direction, as the Standard Webhooks specification recommends.
const DefaultWebhookTolerance = 5 * time.Minute

const (
	webhookSecretPrefix = "whsec_"
	// minWebhookSecretLen is the shortest decoded secret accepted: 128
	// bits. The specification recommends 24 to 64 bytes.
	minWebhookSecretLen = 16
	// maxWebhookIDLen bounds webhook-id; ingest applies the contract's
	// tighter bound on event ids.
	maxWebhookIDLen = 256
	// maxWebhookSignatures bounds the entries of webhook-signature, so a
	// request cannot make verification expensive.
	maxWebhookSignatures = 32
)

// WebhookOptions configure a WebhookVerifier. Zero values mean the defaults.
type WebhookOptions struct {
	// Tolerance is how far webhook-timestamp may be from Now.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// A WebhookVerifier checks Standard Webhooks signatures
// (https://www.standardwebhooks.com): webhook-signature holds one or more
// space-separated "v1,<base64 HMAC-SHA256>" entries over
// "<webhook-id>.<webhook-timestamp>.<body>". It is safe for concurrent use.
type WebhookVerifier struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
}

// NewWebhookVerifier returns a WebhookVerifier accepting a signature by any
// of secrets, so that a sender can rotate: configure the old and the new
// secret, switch the sender, then drop the old one. Each secret is "whsec_"
// followed by the standard base64 of at least 16 bytes; blank elements are
// skipped. Errors name secrets by position, never by value.
func NewWebhookVerifier(secrets []string, opts WebhookOptions) (*WebhookVerifier, error) {
	w := &WebhookVerifier{tolerance: opts.Tolerance, now: opts.Now}
	if w.tolerance == 0 {
		w.tolerance = DefaultWebhookTolerance
	}
	if w.tolerance < 0 {
		return nil, errors.New("webhook timestamp tolerance is negative")
	}
	if w.now == nil {
		w.now = time.Now
	}
	for i, s := range secrets {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		key, err := parseWebhookSecret(s)
		if err != nil {
			return nil, fmt.Errorf("webhook secret %d: %w", i+1, err)
		}
		w.keys = append(w.keys, key)
	}
	if len(w.keys) == 0 {
		return nil, errors.New("no webhook secret configured")
	}
	return w, nil
}

// parseWebhookSecret decodes "whsec_<base64>".
func parseWebhookSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, webhookSecretPrefix)
	if !ok {
		return nil, errors.New(`does not start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New(`is not "whsec_" followed by standard base64`)
	}
	if len(key) < minWebhookSecretLen {
		return nil, fmt.Errorf("is %d bytes, fewer than %d", len(key), minWebhookSecretLen)
	}
	return key, nil
}

// NewWebhookSecret returns a new random secret of 32 bytes, "whsec_…".
func NewWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program instead
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SignWebhook returns the webhook-signature value ("v1,<base64>") of body
// sent as message id at ts, for senders, tools and tests.
func SignWebhook(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := parseWebhookSecret(secret)
	if err != nil {
		return "", fmt.Errorf("webhook secret %w", err)
	}
	mac := webhookMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body)
	return "v1," + base64.StdEncoding.EncodeToString(mac), nil
}

// webhookMAC is HMAC-SHA256(key, id "." ts "." body).
func webhookMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks h's Standard Webhooks headers against body, the raw request
// body byte for byte, and returns webhook-id, which ingest uses as the
// event's idempotency key. A replay within the tolerance passes Verify:
// deduplicating by the returned id is what makes it harmless. Every error
// wraps ErrInvalidSignature.
func (w *WebhookVerifier) Verify(h http.Header, body []byte) (id string, err error) {
	id, err = singleHeader(h, HeaderWebhookID)
	if err != nil {
		return "", err
	}
	if !validWebhookID(id) {
		return "", fmt.Errorf("%w: webhook-id is longer than %d bytes or has control characters", ErrInvalidSignature, maxWebhookIDLen)
	}
	ts, err := singleHeader(h, HeaderWebhookTimestamp)
	if err != nil {
		return "", err
	}
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil || strconv.FormatInt(sec, 10) != ts {
		// Only the canonical form: the signed text is the header as sent.
		return "", fmt.Errorf("%w: webhook-timestamp is not a Unix time in seconds", ErrInvalidSignature)
	}
	now, at := w.now(), time.Unix(sec, 0)
	if now.Sub(at) > w.tolerance {
		return "", fmt.Errorf("%w: webhook-timestamp is too old", ErrInvalidSignature)
	}
	if at.Sub(now) > w.tolerance {
		return "", fmt.Errorf("%w: webhook-timestamp is too new", ErrInvalidSignature)
	}
	sigs, err := parseSignatureHeader(h.Values(HeaderWebhookSignature))
	if err != nil {
		return "", err
	}
	macs := make([][]byte, len(w.keys))
	for i, k := range w.keys {
		macs[i] = webhookMAC(k, id, ts, body)
	}
	// Every pair is compared, in constant time, whatever matches.
	ok := false
	for _, s := range sigs {
		for _, m := range macs {
			ok = hmac.Equal(s, m) || ok
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: no valid signature", ErrInvalidSignature)
	}
	return id, nil
}

// singleHeader returns the one non-empty value of header name.
func singleHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0 || vs[0] == "":
		return "", fmt.Errorf("%w: %s header is missing", ErrInvalidSignature, name)
	case len(vs) > 1:
		return "", fmt.Errorf("%w: %s header is repeated", ErrInvalidSignature, name)
	}
	return vs[0], nil
}

// validWebhookID reports whether id is at most maxWebhookIDLen bytes of
// UTF-8 without control characters.
func validWebhookID(id string) bool {
	if len(id) > maxWebhookIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// parseSignatureHeader returns the decoded v1 signatures of the
// webhook-signature header values. Entries are separated by spaces (several
// header lines count as one list); entries of other versions ("v1a,…") and
// v1 entries that are not 32 bytes of base64 are skipped, as the
// specification lets senders add schemes a receiver does not know.
func parseSignatureHeader(values []string) ([][]byte, error) {
	var (
		sigs [][]byte
		n    int
	)
	for _, v := range values {
		for _, e := range strings.Split(v, " ") {
			if e == "" {
				continue
			}
			if n++; n > maxWebhookSignatures {
				return nil, fmt.Errorf("%w: webhook-signature has more than %d entries", ErrInvalidSignature, maxWebhookSignatures)
			}
			version, b64, ok := strings.Cut(e, ",")
			if !ok || version != "v1" {
				continue
			}
			// Exactly the canonical encoding: DecodeString alone would skip
			// embedded newlines and accept non-zero padding bits.
			if len(b64) != base64.StdEncoding.EncodedLen(sha256.Size) {
				continue
			}
			sig, err := base64.StdEncoding.Strict().DecodeString(b64)
			if err != nil || len(sig) != sha256.Size {
				continue
			}
			sigs = append(sigs, sig)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s header is missing", ErrInvalidSignature, HeaderWebhookSignature)
	}
	return sigs, nil
}
