package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// keyKind is a family of keys, and so of the algorithms a key may verify.
type keyKind int

const (
	kindHMAC keyKind = iota + 1
	kindRSA
	kindP256
	kindEd25519
)

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// algs returns the alg values keys of kind k verify.
func (k keyKind) algs() []string {
	switch k {
	case kindHMAC:
		return []string{"HS256", "HS384", "HS512"}
	case kindRSA:
		return []string{"RS256", "PS256"}
	case kindP256:
		return []string{"ES256"}
	case kindEd25519:
		return []string{"EdDSA"}
	}
	return nil
}

// methodKind returns the key family of a supported signing method, or 0.
// It compares against golang-jwt's registered method values, so an alg is
// tied to the implementation that verifies it.
func methodKind(m jwt.SigningMethod) keyKind {
	switch m {
	case jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512:
		return kindHMAC
	case jwt.SigningMethodRS256, jwt.SigningMethodPS256:
		return kindRSA
	case jwt.SigningMethodES256:
		return kindP256
	case jwt.SigningMethodEdDSA:
		return kindEd25519
	}
	return 0
}

// publicKey is a configured public key and its family.
type publicKey struct {
	key  crypto.PublicKey
	kind keyKind
}

// publicKeyKind returns the family of key, or an error saying why hookwire
// does not accept it.
func publicKeyKind(key any) (keyKind, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return 0, errors.New("RSA key is empty")
		}
		if n := k.N.BitLen(); n < minRSABits {
			return 0, fmt.Errorf("RSA key has %d bits, fewer than %d", n, minRSABits)
		}
		return kindRSA, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return 0, errors.New("ECDSA key is empty")
		}
		if k.Curve != elliptic.P256() {
			return 0, fmt.Errorf("ECDSA curve %s is not supported: only P-256 (ES256)", k.Curve.Params().Name)
		}
		return kindP256, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return 0, errors.New("Ed25519 key has the wrong size")
		}
		return kindEd25519, nil
	}
	return 0, fmt.Errorf("key type %T is not supported", key)
}

// parsePublicKeys returns the public keys of the PEM blocks in data.
func parsePublicKeys(data []byte) ([]publicKey, error) {
	var keys []publicKey
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var (
			pub any
			err error
		)
		switch {
		case b.Type == "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case b.Type == "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case b.Type == "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("PEM block %d is a private key: configure only the public key", n)
		default:
			return nil, fmt.Errorf("PEM block %d has unsupported type %q", n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, b.Type, err)
		}
		kind, err := publicKeyKind(pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, publicKey{key: pub, kind: kind})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM block found")
	}
	if strings.Contains(string(rest), "-----BEGIN") {
		// pem.Decode stops at a damaged block, such as a truncated file.
		return nil, fmt.Errorf("PEM block %d is damaged", len(keys)+1)
	}
	return keys, nil
}

// maxJWKSBody caps a JWK Set response.
const maxJWKSBody = 1 << 20

// newJWKS returns the storage of opts.JWKSURL, fetched once and refreshed
// until ctx is done.
func newJWKS(ctx context.Context, opts VerifierOptions) (jwkset.Storage, error) {
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("JWKS URL must be an absolute http(s) URL")
	}
	if !secureURL(u, opts.JWKSAllowHTTP) {
		return nil, errors.New("JWKS URL must use https (plain http only on loopback, or with JWKSAllowHTTP)")
	}
	interval := opts.JWKSRefreshInterval
	if interval == 0 {
		interval = DefaultJWKSRefreshInterval
	}
	timeout := opts.JWKSTimeout
	if timeout == 0 {
		timeout = DefaultJWKSTimeout
	}
	if interval < 0 || timeout < 0 {
		return nil, errors.New("JWKS refresh interval and timeout must not be negative")
	}
	limiter := opts.JWKSRefreshUnknownKID
	if limiter == nil {
		limiter = rate.NewLimiter(rate.Every(DefaultJWKSUnknownKIDEvery), 1)
	}
	onErr := opts.OnJWKSError
	noErrorOnFirst := true
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{opts.JWKSURL}, keyfunc.Override{
		Client:                    jwksClient(opts.JWKSHTTPClient, opts.JWKSAllowHTTP),
		HTTPTimeout:               timeout,
		NoErrorReturnFirstHTTPReq: &noErrorOnFirst,
		// Also bounds the unknown-kid refresh, which runs under this
		// deadline.
		RateLimitWaitMax:  timeout,
		RefreshInterval:   interval,
		RefreshUnknownKID: limiter,
		// Replaces keyfunc's default, which logs to slog.Default.
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				if onErr != nil {
					onErr(fmt.Errorf("fetch JWKS: %w", err))
				}
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return kf.Storage(), nil
}

// secureURL reports whether keys may be fetched from u: over https, or over
// http to a loopback host or when allowHTTP is set.
func secureURL(u *url.URL, allowHTTP bool) bool {
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	if allowHTTP {
		return true
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// jwksClient returns a copy of c (or of a default client) whose responses
// are capped at maxJWKSBody and whose redirects stay on secure URLs.
func jwksClient(c *http.Client, allowHTTP bool) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = limitedTransport{base: base, max: maxJWKSBody}
	prev := out.CheckRedirect
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !secureURL(req.URL, allowHTTP) {
			return errors.New("JWKS redirect to an insecure URL")
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 10 {
			return errors.New("JWKS: stopped after 10 redirects")
		}
		return nil
	}
	return out
}

// limitedTransport caps response bodies at max bytes; a longer body reads
// as truncated, which fails JSON decoding.
type limitedTransport struct {
	base http.RoundTripper
	max  int64
}

// RoundTrip implements http.RoundTripper.
func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, t.max), resp.Body}
	return resp, nil
}
