package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every token rejection. The wrapped text says
// why (expired, bad signature, missing claim) and is safe to show the client:
// it never contains the token.
var ErrInvalidToken = errors.New("invalid token")

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

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// HMACSecret is the HS256 key. It is required until public keys and
	// JWKS arrive.
	HMACSecret []byte
	Issuer     string        // required iss when set
	Audience   string        // required aud when set
	Leeway     time.Duration // clock skew allowed on exp/nbf/iat
}

// A Verifier checks subscriber tokens. It is safe for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	secret []byte
}

// NewVerifier returns a Verifier for opts.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	if len(opts.HMACSecret) == 0 {
		return nil, errors.New("no JWT key configured")
	}
	popts := []jwt.ParserOption{
		// Only the algorithms of configured keys; never "none".
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
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
	return &Verifier{parser: jwt.NewParser(popts...), secret: opts.HMACSecret}, nil
}

// Verify checks token's signature and claims and returns its claims. Every
// error wraps ErrInvalidToken.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("%w: missing", ErrInvalidToken)
	}
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
		}
		return v.secret, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if tc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: sub claim is required", ErrInvalidToken)
	}
	for _, p := range tc.Channels {
		if !ValidPattern(p) {
			return Claims{}, fmt.Errorf("%w: invalid channel pattern in channels claim", ErrInvalidToken)
		}
	}
	return Claims{Subject: tc.Subject, Channels: tc.Channels, Expiry: tc.ExpiresAt.Time}, nil
}

// reason turns a jwt error into a short client-safe phrase.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token is expired"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
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

// ValidPattern reports whether p is a channel pattern: a channel name, or a
// possibly empty prefix of one followed by "*".
func ValidPattern(p string) bool {
	name, wild := strings.CutSuffix(p, "*")
	if wild && name == "" {
		return true
	}
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// ChannelAllowed reports whether one of patterns grants channel: an exact
// match, or a prefix match for a pattern ending in "*".
func (c Claims) ChannelAllowed(channel string) bool {
	for _, p := range c.Channels {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(channel, prefix) {
				return true
			}
		} else if p == channel {
			return true
		}
	}
	return false
}
