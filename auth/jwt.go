package auth

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// ErrInvalidToken is wrapped by every token rejection. The wrapped text says
// why (expired, bad signature, missing claim) and is safe to show the client:
// it never contains the token.
var ErrInvalidToken = errors.New("invalid token")

// Reasons the key lookup gives; the parser wraps them, and reason finds them
// with errors.Is. Their text is shown to clients.
var (
	errAlgorithm   = errors.New("algorithm is not accepted")
	errUnknownKey  = errors.New("signing key is unknown")
	errKeyMismatch = errors.New("signing key does not match the algorithm")
	errCritical    = errors.New("critical header parameters are not supported")
)

// maxTokenLen bounds a token before it is parsed: the parser decodes the
// header and claims before it checks the signature.
const maxTokenLen = 8 << 10

// maxSubjectLen is the contract's bound on user ids.
const maxSubjectLen = 128

// Claims are what hookwire takes from a subscriber token.
type Claims struct {
	Subject string
	// Channels are the channel patterns the subscriber may join: exact
	// names, or prefixes ending in "*".
	Channels []string
	Expiry   time.Time
}

// tokenClaims is the JWT body.
type tokenClaims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
}

// VerifierOptions configure a Verifier. At least one of HMACSecret,
// PublicKeyPEM and JWKSURL is required; any combination is allowed. The
// token's alg header picks the key family: HS* tokens are checked only
// against HMACSecret, every other algorithm only against public keys, so a
// public key can never be used as an HMAC secret.
type VerifierOptions struct {
	// HMACSecret verifies HS256, HS384 and HS512 tokens.
	HMACSecret []byte
	// MinHMACLen, when positive, is the shortest HMACSecret accepted, in
	// bytes: NewVerifierContext fails on a shorter one. Production passes 32.
	MinHMACLen int

	// PublicKeyPEM holds one or more PEM blocks of type "PUBLIC KEY"
	// (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" (only its public
	// key is used; validity dates and chains are not checked). Each key
	// enables the algorithms of its type: RSA (2048 bits or more) RS256 and
	// PS256, ECDSA P-256 ES256, Ed25519 EdDSA. Any other key type or curve,
	// and any private key, is an error.
	PublicKeyPEM []byte

	// JWKSURL is a JWK Set endpoint; it needs NewVerifierContext. The set
	// is fetched once by NewVerifierContext (a failure there is reported to
	// OnJWKSError, not returned, so the process can start while the
	// identity provider is down), then every JWKSRefreshInterval, and when
	// a token names an unknown kid (at most as often as
	// JWKSRefreshUnknownKID allows). It enables RS256, PS256, ES256 and
	// EdDSA; each key is used only for the algorithm its type and its "alg"
	// member allow, and never when its "use" is not "sig". The URL must be
	// https unless its host is a loopback address or JWKSAllowHTTP is set.
	JWKSURL string
	// JWKSRefreshInterval is the period of the background refresh; it
	// bounds how long a revoked key stays trusted. Zero means 15 minutes.
	JWKSRefreshInterval time.Duration
	// JWKSRefreshUnknownKID limits the refreshes triggered by tokens with
	// an unknown kid, so forged kids cannot hammer the endpoint. Nil means
	// one per 5 minutes (burst 1).
	JWKSRefreshUnknownKID *rate.Limiter
	// JWKSTimeout bounds one fetch, and how long a verification waits for
	// an unknown-kid refresh. Zero means 10 seconds.
	JWKSTimeout time.Duration
	// JWKSHTTPClient fetches the set; nil means http.DefaultTransport. The
	// Verifier uses a copy that caps the response at 1 MiB and refuses
	// redirects to plain http.
	JWKSHTTPClient *http.Client
	// JWKSAllowHTTP permits a plain http JWKSURL on a non-loopback host.
	JWKSAllowHTTP bool
	// OnJWKSError, when not nil, receives each failed fetch of the set. It
	// is called from the refresh goroutine or from a verification.
	OnJWKSError func(error)

	Issuer   string        // required iss when set
	Audience string        // required aud (one of the token's) when set
	Leeway   time.Duration // clock skew allowed on exp, nbf and iat
}

// Defaults of VerifierOptions.
const (
	DefaultJWKSRefreshInterval = 15 * time.Minute
	DefaultJWKSUnknownKIDEvery = 5 * time.Minute
	DefaultJWKSTimeout         = 10 * time.Second
)

// A Verifier checks subscriber tokens. It is safe for concurrent use.
type Verifier struct {
	parser  *jwt.Parser
	algs    []string // accepted alg values
	secret  []byte   // nil without HMACSecret
	pemKeys []publicKey
	jwks    jwkset.Storage // nil without JWKSURL
}

// NewVerifierContext returns a Verifier for opts. With a JWKSURL it fetches
// the key set, waiting at most JWKSTimeout, and starts a goroutine that
// refreshes it until ctx is done; the Verifier keeps working after that with
// the keys it last fetched.
func NewVerifierContext(ctx context.Context, opts VerifierOptions) (*Verifier, error) {
	v, err := newVerifier(opts)
	if err != nil {
		return nil, err
	}
	if opts.JWKSURL != "" {
		if v.jwks, err = newJWKS(ctx, opts); err != nil {
			return nil, err
		}
		for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
			if !slices.Contains(v.algs, alg) {
				v.algs = append(v.algs, alg)
			}
		}
		v.parser = newParser(v.algs, opts)
	}
	return v, nil
}

// newVerifier builds a Verifier from everything in opts but the JWKS.
func newVerifier(opts VerifierOptions) (*Verifier, error) {
	if len(opts.HMACSecret) == 0 && len(opts.PublicKeyPEM) == 0 && opts.JWKSURL == "" {
		return nil, errors.New("no JWT key configured: set an HMAC secret, a PEM public key or a JWKS URL")
	}
	if opts.Leeway < 0 {
		return nil, fmt.Errorf("JWT leeway %v is negative", opts.Leeway)
	}
	v := &Verifier{}
	if len(opts.HMACSecret) > 0 {
		if opts.MinHMACLen > 0 && len(opts.HMACSecret) < opts.MinHMACLen {
			return nil, fmt.Errorf("JWT HMAC secret is %d bytes, shorter than the required %d", len(opts.HMACSecret), opts.MinHMACLen)
		}
		if bytes.Contains(opts.HMACSecret, []byte("-----BEGIN")) {
			// A PEM key pasted as the secret would let anyone who has the
			// public key sign HS256 tokens.
			return nil, errors.New("JWT HMAC secret looks like a PEM key: configure public keys as PEM, not as the secret")
		}
		v.secret = bytes.Clone(opts.HMACSecret)
		v.algs = append(v.algs, "HS256", "HS384", "HS512")
	}
	if len(opts.PublicKeyPEM) > 0 {
		keys, err := parsePublicKeys(opts.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("JWT public keys: %w", err)
		}
		v.pemKeys = keys
		for _, k := range keys {
			for _, alg := range k.kind.algs() {
				if !slices.Contains(v.algs, alg) {
					v.algs = append(v.algs, alg)
				}
			}
		}
	}
	v.parser = newParser(v.algs, opts)
	return v, nil
}

// newParser returns a parser accepting algs and checking exp (required),
// nbf, iat, and iss and aud when opts sets them.
func newParser(algs []string, opts VerifierOptions) *jwt.Parser {
	popts := []jwt.ParserOption{
		// Only the algorithms of configured keys; never "none". The key
		// lookup checks the algorithm again, against the key's type.
		jwt.WithValidMethods(slices.Clone(algs)),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithIssuedAt(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	return jwt.NewParser(popts...)
}

// VerifyContext checks token's signature and claims and returns its claims.
// ctx bounds a JWKS lookup (an unknown kid can trigger a refresh). Every
// error wraps ErrInvalidToken.
func (v *Verifier) VerifyContext(ctx context.Context, token string) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("%w: token is missing", ErrInvalidToken)
	}
	if len(token) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: token is longer than %d bytes", ErrInvalidToken, maxTokenLen)
	}
	var tc tokenClaims
	tok, err := v.parser.ParseWithClaims(token, &tc, v.keyfunc(ctx))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %s", ErrInvalidToken, v.reason(tok, err))
	}
	if tc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: sub claim is required", ErrInvalidToken)
	}
	if !validSubject(tc.Subject) {
		return Claims{}, fmt.Errorf("%w: sub claim is not a valid user id", ErrInvalidToken)
	}
	for _, p := range tc.Channels {
		if !ValidPattern(p) {
			return Claims{}, fmt.Errorf("%w: invalid channel pattern in channels claim", ErrInvalidToken)
		}
	}
	return Claims{Subject: tc.Subject, Channels: tc.Channels, Expiry: tc.ExpiresAt.Time}, nil
}

// RefreshContext verifies token, a replacement for the token a connection
// was opened with, and returns its claims. The new token must be for the
// same subject as current. The caller swaps in the returned claims as a
// whole: the new channels and expiry replace the old ones. Every error wraps
// ErrInvalidToken.
func (v *Verifier) RefreshContext(ctx context.Context, current Claims, token string) (Claims, error) {
	c, err := v.VerifyContext(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	if current.Subject == "" || c.Subject != current.Subject {
		return Claims{}, fmt.Errorf("%w: token is for another subject", ErrInvalidToken)
	}
	return c, nil
}

// validSubject reports whether sub is a user id as the contract defines
// them: 1..128 bytes of UTF-8 without control characters.
func validSubject(sub string) bool {
	if len(sub) == 0 || len(sub) > maxSubjectLen || !utf8.ValidString(sub) {
		return false
	}
	for _, r := range sub {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// keyfunc returns the key lookup for one verification. The key family
// follows the token's signing method, never the other way round: HS* get the
// HMAC secret and nothing else, the others get public keys of the matching
// type and nothing else. Keys named by the token itself (jwk, jku, x5u, x5c
// headers) are never used.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// RFC 7515 §4.1.11: extensions a recipient does not
			// understand make the token invalid.
			return nil, errCritical
		}
		kind := methodKind(t.Method)
		if kind == 0 || !slices.Contains(v.algs, t.Method.Alg()) {
			return nil, errAlgorithm
		}
		if kind == kindHMAC {
			if v.secret == nil {
				return nil, errAlgorithm
			}
			return v.secret, nil
		}
		var keys []jwt.VerificationKey
		for _, k := range v.pemKeys {
			if k.kind == kind {
				keys = append(keys, k.key)
			}
		}
		if v.jwks != nil {
			jk, err := v.jwksKeys(ctx, t, kind)
			if err != nil && len(keys) == 0 {
				return nil, err
			}
			keys = append(keys, jk...)
		}
		if len(keys) == 0 {
			return nil, errKeyMismatch
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// jwksKeys returns the JWKS keys that may verify t: the key named by its kid
// or, without a kid, every key usable for its algorithm.
func (v *Verifier) jwksKeys(ctx context.Context, t *jwt.Token, kind keyKind) ([]jwt.VerificationKey, error) {
	alg := t.Method.Alg()
	if raw, ok := t.Header[jwkset.HeaderKID]; ok {
		kid, ok := raw.(string)
		if !ok || kid == "" {
			return nil, errUnknownKey
		}
		j, err := v.jwks.KeyRead(ctx, kid)
		if err != nil {
			return nil, errUnknownKey
		}
		key, err := usableJWK(j, alg, kind)
		if err != nil {
			return nil, err
		}
		return []jwt.VerificationKey{key}, nil
	}
	all, err := v.jwks.KeyReadAll(ctx)
	if err != nil {
		return nil, errUnknownKey
	}
	var keys []jwt.VerificationKey
	for _, j := range all {
		if key, err := usableJWK(j, alg, kind); err == nil {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errKeyMismatch
	}
	return keys, nil
}

// usableJWK returns j's public key if j may verify a token signed with alg,
// whose key family is kind.
func usableJWK(j jwkset.JWK, alg string, kind keyKind) (crypto.PublicKey, error) {
	m := j.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, errKeyMismatch
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, errKeyMismatch
	}
	if m.ALG != "" && string(m.ALG) != alg {
		return nil, errKeyMismatch
	}
	key := j.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public() // a set that (wrongly) publishes private keys
	}
	if k, err := publicKeyKind(key); err != nil || k != kind {
		return nil, errKeyMismatch
	}
	return key, nil
}

// reason turns a parse error into a short client-safe phrase. tok is what
// the parser returned with err, possibly nil.
func (v *Verifier) reason(tok *jwt.Token, err error) string {
	for _, e := range []error{errAlgorithm, errUnknownKey, errKeyMismatch, errCritical} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case tok != nil && (tok.Method == nil || !slices.Contains(v.algs, tok.Method.Alg())):
		// The parser's own algorithm check, or an unknown alg header.
		return errAlgorithm.Error()
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token is expired"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature is invalid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim is missing"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience is not accepted"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token is not valid yet"
	}
	return "token is invalid"
}

// Sign returns an HS256 token for c, as `hookwire token` prints it.
func Sign(secret []byte, c Claims) (string, error) { return SignWith(secret, c, "", "") }

// SignWith is Sign with an issuer and audience, for deployments that
// require them.
func SignWith(secret []byte, c Claims, issuer, audience string) (string, error) {
	now := time.Now()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(c.Expiry),
		},
		Channels: c.Channels,
	}
	if audience != "" {
		tc.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(secret)
}
