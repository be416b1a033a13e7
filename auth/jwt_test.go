package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hookwire/hookwire/auth"
)

// testKeys are generated once: RSA generation is slow under -race.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	rsaSmall  *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	ecP384    *ecdsa.PrivateKey
	ed, ed2   ed25519.PrivateKey
}

var loadKeys = sync.OnceValue(func() testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k testKeys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecP384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.ed2, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// pemOf returns the PKIX PEM of the public keys.
func pemOf(t testing.TB, pubs ...any) []byte {
	t.Helper()
	var out []byte
	for _, p := range pubs {
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

// claims returns valid claims for user 42, changed by the edits.
func claims(edits ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "channels": []string{"prices.*"}}
	for _, e := range edits {
		e(c)
	}
	return c
}

// signToken signs c with m and key, with a kid header when kid is not "".
func signToken(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// wantInvalid fails unless err wraps ErrInvalidToken, says reason, and
// does not echo token.
func wantInvalid(t *testing.T, err error, token, reason string) {
	t.Helper()
	if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("error = %v; want ErrInvalidToken containing %q", err, reason)
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Fatal("error echoes the token")
	}
}

func TestVerifyEachAlgorithm(t *testing.T) {
	k := loadKeys()
	tests := []struct {
		name string
		opts auth.VerifierOptions
		m    jwt.SigningMethod
		key  any
	}{
		{"HS256", auth.VerifierOptions{HMACSecret: secret}, jwt.SigningMethodHS256, secret},
		{"HS384", auth.VerifierOptions{HMACSecret: secret}, jwt.SigningMethodHS384, secret},
		{"HS512", auth.VerifierOptions{HMACSecret: secret}, jwt.SigningMethodHS512, secret},
		{"RS256", auth.VerifierOptions{PublicKeyPEM: pemOf(t, &k.rsa.PublicKey)}, jwt.SigningMethodRS256, k.rsa},
		{"PS256", auth.VerifierOptions{PublicKeyPEM: pemOf(t, &k.rsa.PublicKey)}, jwt.SigningMethodPS256, k.rsa},
		{"ES256", auth.VerifierOptions{PublicKeyPEM: pemOf(t, &k.ec.PublicKey)}, jwt.SigningMethodES256, k.ec},
		{"EdDSA", auth.VerifierOptions{PublicKeyPEM: pemOf(t, k.ed.Public())}, jwt.SigningMethodEdDSA, k.ed},
		{"RS256 PKCS #1 PEM", auth.VerifierOptions{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})}, jwt.SigningMethodRS256, k.rsa},
		{"RS256 second PEM block", auth.VerifierOptions{PublicKeyPEM: pemOf(t, &k.rsa2.PublicKey, &k.rsa.PublicKey)}, jwt.SigningMethodRS256, k.rsa},
		{"ES256 among every key type", auth.VerifierOptions{HMACSecret: secret, PublicKeyPEM: pemOf(t, &k.rsa.PublicKey, k.ed.Public(), &k.ec.PublicKey)}, jwt.SigningMethodES256, k.ec},
		{"EdDSA among every key type", auth.VerifierOptions{HMACSecret: secret, PublicKeyPEM: pemOf(t, &k.rsa.PublicKey, k.ed.Public(), &k.ec.PublicKey)}, jwt.SigningMethodEdDSA, k.ed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := auth.NewVerifierContext(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.VerifyContext(t.Context(), signToken(t, tt.m, tt.key, claims(), ""))
			if err != nil || c.Subject != "42" || len(c.Channels) != 1 || c.Expiry.IsZero() {
				t.Fatalf("Verify = %+v, %v", c, err)
			}
		})
	}
}

func TestVerifyCertificatePEM(t *testing.T) {
	k := loadKeys()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec.PublicKey, k.ec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyContext(t.Context(), signToken(t, jwt.SigningMethodES256, k.ec, claims(), "")); err != nil {
		t.Fatal(err)
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != "ES256" {
		t.Errorf("Algorithms = %v, want [ES256]", got)
	}
}

// TestAlgorithmConfusion is the classic attack: the attacker takes the
// server's RSA public key, which is public, and uses its PEM bytes as an
// HMAC secret.
func TestAlgorithmConfusion(t *testing.T) {
	k := loadKeys()
	pub := pemOf(t, &k.rsa.PublicKey)
	forged := signToken(t, jwt.SigningMethodHS256, pub, claims(), "")
	forgedDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	forged2 := signToken(t, jwt.SigningMethodHS256, forgedDER, claims(), "")

	pemOnly, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	both, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: secret, PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{forged, forged2} {
		_, err = pemOnly.VerifyContext(t.Context(), tok)
		wantInvalid(t, err, tok, "algorithm is not accepted")
		_, err = both.VerifyContext(t.Context(), tok)
		wantInvalid(t, err, tok, "signature is invalid")
	}
	// The real tokens of both families still pass.
	if _, err := both.VerifyContext(t.Context(), signToken(t, jwt.SigningMethodRS256, k.rsa, claims(), "")); err != nil {
		t.Errorf("RS256: %v", err)
	}
	if _, err := both.VerifyContext(t.Context(), signToken(t, jwt.SigningMethodHS256, secret, claims(), "")); err != nil {
		t.Errorf("HS256: %v", err)
	}
	// A deployment that pastes the PEM as the secret is refused outright.
	if _, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: pub, PublicKeyPEM: pub}); err == nil || !strings.Contains(err.Error(), "looks like a PEM key") {
		t.Errorf("PEM as HMAC secret: NewVerifierContext error = %v", err)
	}
}

func TestVerifyAttacks(t *testing.T) {
	k := loadKeys()
	now := time.Now()
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{
		HMACSecret:   secret,
		PublicKeyPEM: pemOf(t, &k.rsa.PublicKey, &k.ec.PublicKey),
		Issuer:       "https://idp.example",
		Audience:     "hookwire",
		Leeway:       5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	good := func(c jwt.MapClaims) { c["iss"], c["aud"] = "https://idp.example", "hookwire" }
	noneTok := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(good), "")
	// Hand-made: "none" with the signature segment left empty, upper case.
	noneUpper := strings.Replace(noneTok, strings.Split(noneTok, ".")[0], jwtHeader(`{"alg":"NONE","typ":"JWT"}`), 1)

	tests := []struct {
		name   string
		token  string
		reason string // "" = accepted
	}{
		{"valid HS256", signToken(t, jwt.SigningMethodHS256, secret, claims(good), ""), ""},
		{"valid RS256", signToken(t, jwt.SigningMethodRS256, k.rsa, claims(good), ""), ""},
		{"valid aud list", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["aud"] = []string{"other", "hookwire"} }), ""), ""},
		{"alg none", noneTok, "algorithm is not accepted"},
		{"alg NONE", noneUpper, "algorithm is not accepted"},
		{"unknown alg", strings.Replace(noneTok, strings.Split(noneTok, ".")[0], jwtHeader(`{"alg":"HS1"}`), 1), "algorithm is not accepted"},
		{"no alg", strings.Replace(noneTok, strings.Split(noneTok, ".")[0], jwtHeader(`{"typ":"JWT"}`), 1), "algorithm is not accepted"},
		{"EdDSA without an Ed25519 key", signToken(t, jwt.SigningMethodEdDSA, k.ed, claims(good), ""), "algorithm is not accepted"},
		{"RS384 not enabled by RSA keys", signToken(t, jwt.SigningMethodRS384, k.rsa, claims(good), ""), "algorithm is not accepted"},
		{"RS256 by another RSA key", signToken(t, jwt.SigningMethodRS256, k.rsa2, claims(good), ""), "signature is invalid"},
		{"ES256 by another EC key", signToken(t, jwt.SigningMethodES256, k.ec2, claims(good), ""), "signature is invalid"},
		{"HS256 by another secret", signToken(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims(good), ""), "signature is invalid"},
		{"embedded jwk header", withHeader(t, jwt.SigningMethodES256, k.ec2, claims(good), "jwk", publicJWK(t, &k.ec2.PublicKey)), "signature is invalid"},
		{"jku header", withHeader(t, jwt.SigningMethodES256, k.ec2, claims(good), "jku", "https://evil.example/jwks"), "signature is invalid"},
		{"crit header", withHeader(t, jwt.SigningMethodHS256, secret, claims(good), "crit", []string{"exp"}), "critical header"},
		{"expired", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), ""), "expired"},
		{"expired within leeway", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Second).Unix() }), ""), ""},
		{"nbf in the future", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), ""), "not valid yet"},
		{"iat in the future", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }), ""), "not valid yet"},
		{"wrong iss", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), ""), "issuer"},
		{"missing iss", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { delete(c, "iss") }), ""), "required claim"},
		{"wrong aud", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["aud"] = "other" }), ""), "audience"},
		{"missing aud", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { delete(c, "aud") }), ""), "required claim"},
		{"missing exp", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { delete(c, "exp") }), ""), "required claim"},
		{"missing sub", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { delete(c, "sub") }), ""), "sub claim is required"},
		{"sub with control characters", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["sub"] = "42\n" }), ""), "sub claim"},
		{"sub too long", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["sub"] = strings.Repeat("x", 129) }), ""), "sub claim"},
		{"sub not a string", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["sub"] = 42 }), ""), "malformed"},
		{"channels not a list", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["channels"] = "prices.*" }), ""), "malformed"},
		{"bad channel pattern", signToken(t, jwt.SigningMethodHS256, secret, claims(good, func(c jwt.MapClaims) { c["channels"] = []string{"a*b"} }), ""), "pattern"},
		{"too long", strings.Repeat("a", 9<<10), "longer than"},
		{"two segments", "a.b", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyContext(t.Context(), tt.token)
			if tt.reason == "" {
				if err != nil || c.Subject == "" {
					t.Fatalf("Verify = %+v, %v", c, err)
				}
				return
			}
			wantInvalid(t, err, tt.token, tt.reason)
		})
	}
}

// publicJWK returns the JWK of pub, as an attacker would embed it.
func publicJWK(t *testing.T, pub any) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j.Marshal()
}

// withHeader signs c with m and key, with header name set to value.
func withHeader(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	tok.Header[name] = value
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtHeader returns the base64url segment of a raw JSON header.
func jwtHeader(j string) string { return base64.RawURLEncoding.EncodeToString([]byte(j)) }

func TestNewVerifierErrors(t *testing.T) {
	k := loadKeys()
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	tests := []struct {
		name string
		opts auth.VerifierOptions
		want string
	}{
		{"no key", auth.VerifierOptions{}, "no JWT key"},
		{"short secret", auth.VerifierOptions{HMACSecret: []byte("tiny-s3cret"), MinHMACLen: 32}, "shorter than the required 32"},
		{"negative leeway", auth.VerifierOptions{HMACSecret: secret, Leeway: -time.Second}, "negative"},
		{"private key PEM", auth.VerifierOptions{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})}, "private key"},
		{"RSA 1024", auth.VerifierOptions{PublicKeyPEM: pemOf(t, &k.rsaSmall.PublicKey)}, "1024 bits"},
		{"P-384", auth.VerifierOptions{PublicKeyPEM: pemOf(t, &k.ecP384.PublicKey)}, "P-384"},
		{"not PEM", auth.VerifierOptions{PublicKeyPEM: []byte("ssh-ed25519 AAAA")}, "no PEM block"},
		{"truncated second block", auth.VerifierOptions{PublicKeyPEM: append(pemOf(t, &k.ec.PublicKey), pemOf(t, &k.rsa.PublicKey)[:100]...)}, "damaged"},
		{"unknown block", auth.VerifierOptions{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "OPENSSH KEY", Bytes: []byte{1}})}, "unsupported type"},
		{"garbage key", auth.VerifierOptions{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})}, "PEM block 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewVerifierContext(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifierContext error = %v, want one containing %q", err, tt.want)
			}
			if len(tt.opts.HMACSecret) > 0 && strings.Contains(err.Error(), string(tt.opts.HMACSecret)) {
				t.Fatal("error echoes the secret")
			}
		})
	}
	if _, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: secret, MinHMACLen: 32}); err != nil {
		t.Errorf("32-byte secret with MinHMACLen 32: %v", err)
	}
}

func TestRefresh(t *testing.T) {
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	current, err := v.VerifyContext(t.Context(), signToken(t, jwt.SigningMethodHS256, secret, claims(), ""))
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Hour)
	renewed := signToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
		c["exp"], c["channels"] = later.Unix(), []string{"news"}
	}), "")
	c, err := v.RefreshContext(t.Context(), current, renewed)
	if err != nil || c.Subject != "42" || c.Expiry.Unix() != later.Unix() || len(c.Channels) != 1 || c.Channels[0] != "news" {
		t.Fatalf("Refresh = %+v, %v", c, err)
	}

	other := signToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "43" }), "")
	_, err = v.RefreshContext(t.Context(), current, other)
	wantInvalid(t, err, other, "another subject")
	_, err = v.RefreshContext(t.Context(), auth.Claims{}, renewed)
	wantInvalid(t, err, renewed, "another subject")
	expired := signToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "")
	_, err = v.RefreshContext(t.Context(), current, expired)
	wantInvalid(t, err, expired, "expired")
}

func FuzzVerify(f *testing.F) {
	k := loadKeys()
	v, err := auth.NewVerifierContext(f.Context(), auth.VerifierOptions{HMACSecret: secret, PublicKeyPEM: pemOf(f, &k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public())})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("not.a.jwt")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(signToken(f, jwt.SigningMethodHS256, secret, claims(), ""))
	f.Add(signToken(f, jwt.SigningMethodRS256, k.rsa, claims(), ""))
	f.Add(signToken(f, jwt.SigningMethodES256, k.ec, claims(), "kid"))
	f.Add(signToken(f, jwt.SigningMethodEdDSA, k.ed, claims(), ""))
	f.Add(signToken(f, jwt.SigningMethodHS256, pemOf(f, &k.rsa.PublicKey), claims(), ""))
	f.Add(signToken(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(), ""))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.VerifyContext(t.Context(), token)
		if err == nil {
			if c.Subject == "" || c.Expiry.IsZero() {
				t.Fatalf("accepted with claims %+v", c)
			}
			return
		}
		if !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("error %v does not wrap ErrInvalidToken", err)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatal("error echoes the token")
		}
	})
}
