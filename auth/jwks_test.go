package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/hookwire/hookwire/auth"
)

// jwk is one key a jwksServer serves.
type jwk struct {
	kid string
	key any // public key
	alg jwkset.ALG
	use jwkset.USE
}

// jwksServer serves a JWK Set that tests can replace, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...jwk) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the served set by keys, built with jwkset.
func (s *jwksServer) serve(t *testing.T, keys ...jwk) {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: k.alg, USE: k.use}})
		if err != nil {
			t.Fatalf("JWK %s: %v", k.kid, err)
		}
		if err := store.KeyWrite(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	body, err := store.JSONPublic(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func TestJWKS(t *testing.T) {
	k := loadKeys()
	srv := newJWKSServer(t,
		jwk{kid: "rsa1", key: &k.rsa.PublicKey, alg: jwkset.AlgRS256},
		jwk{kid: "rsa-any", key: &k.rsa2.PublicKey}, // no alg: RS256 and PS256
		jwk{kid: "ec1", key: &k.ec.PublicKey},       // no alg: its type decides
		jwk{kid: "ed1", key: k.ed.Public()},
		jwk{kid: "enc", key: &k.ec2.PublicKey, use: jwkset.UseEnc},
		jwk{kid: "small", key: &k.rsaSmall.PublicKey},
		jwk{kid: "p384", key: &k.ecP384.PublicKey},
	)
	var fetchErrs atomic.Int64
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{
		JWKSURL:               srv.URL,
		JWKSRefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		OnJWKSError:           func(error) { fetchErrs.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		token  string
		reason string // "" = accepted
	}{
		{"RS256 by kid", signToken(t, jwt.SigningMethodRS256, k.rsa, claims(), "rsa1"), ""},
		{"PS256 by kid without alg", signToken(t, jwt.SigningMethodPS256, k.rsa2, claims(), "rsa-any"), ""},
		{"ES256 by kid", signToken(t, jwt.SigningMethodES256, k.ec, claims(), "ec1"), ""},
		{"EdDSA by kid", signToken(t, jwt.SigningMethodEdDSA, k.ed, claims(), "ed1"), ""},
		{"ES256 without kid", signToken(t, jwt.SigningMethodES256, k.ec, claims(), ""), ""},
		{"RS256 header, EC key", signToken(t, jwt.SigningMethodRS256, k.rsa, claims(), "ec1"), "does not match the algorithm"},
		{"ES256 header, RSA key", signToken(t, jwt.SigningMethodES256, k.ec, claims(), "rsa-any"), "does not match the algorithm"},
		{"PS256 header, key says RS256", signToken(t, jwt.SigningMethodPS256, k.rsa, claims(), "rsa1"), "does not match the algorithm"},
		{"EdDSA header, EC key", signToken(t, jwt.SigningMethodEdDSA, k.ed, claims(), "ec1"), "does not match the algorithm"},
		{"key for encryption", signToken(t, jwt.SigningMethodES256, k.ec2, claims(), "enc"), "does not match the algorithm"},
		{"1024-bit RSA key", signToken(t, jwt.SigningMethodRS256, k.rsaSmall, claims(), "small"), "does not match the algorithm"},
		{"P-384 key for ES256", signToken(t, jwt.SigningMethodES256, k.ec, claims(), "p384"), "does not match the algorithm"},
		{"right kid, wrong signer", signToken(t, jwt.SigningMethodRS256, k.rsa2, claims(), "rsa1"), "signature is invalid"},
		{"unknown kid", signToken(t, jwt.SigningMethodRS256, k.rsa, claims(), "nope"), "signing key is unknown"},
		{"kid not a string", kidNotString(t, k.ec), "signing key is unknown"},
		// The confusion attack against a JWKS: the RSA key's JSON as an
		// HMAC secret, with or without its kid.
		{"HS256 with the JWK as secret", signToken(t, jwt.SigningMethodHS256, mustJSON(t, srv), claims(), "rsa1"), "algorithm is not accepted"},
		{"alg none", signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(), "rsa1"), "algorithm is not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyContext(t.Context(), tt.token)
			if tt.reason == "" {
				if err != nil || c.Subject != "42" {
					t.Fatalf("Verify = %+v, %v", c, err)
				}
				return
			}
			wantInvalid(t, err, tt.token, tt.reason)
		})
	}
	if n := fetchErrs.Load(); n != 0 {
		t.Errorf("%d fetch errors", n)
	}
}

// kidNotString returns an ES256 token by key whose kid header is a number.
func kidNotString(t *testing.T, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims())
	tok.Header["kid"] = 7
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustJSON(t *testing.T, s *jwksServer) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.body...)
}

func TestJWKSCombinedWithSecretAndPEM(t *testing.T) {
	k := loadKeys()
	srv := newJWKSServer(t, jwk{kid: "ec1", key: &k.ec.PublicKey})
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{
		HMACSecret:   secret,
		PublicKeyPEM: pemOf(t, &k.rsa.PublicKey),
		JWKSURL:      srv.URL,
		// Never refresh on unknown kids here.
		JWKSRefreshUnknownKID: rate.NewLimiter(0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"HS256 by the secret":         signToken(t, jwt.SigningMethodHS256, secret, claims(), ""),
		"RS256 by the PEM key":        signToken(t, jwt.SigningMethodRS256, k.rsa, claims(), ""),
		"RS256 by the PEM key, a kid": signToken(t, jwt.SigningMethodRS256, k.rsa, claims(), "not-in-jwks"),
		"ES256 by the JWKS key":       signToken(t, jwt.SigningMethodES256, k.ec, claims(), "ec1"),
	} {
		if _, err := v.VerifyContext(t.Context(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// EdDSA is enabled by the JWKS, but no Ed25519 key is served.
	tok := signToken(t, jwt.SigningMethodEdDSA, k.ed, claims(), "")
	_, err = v.VerifyContext(t.Context(), tok)
	wantInvalid(t, err, tok, "does not match the algorithm")
	// The secret never verifies an asymmetric alg, nor a public key HS*.
	tok = signToken(t, jwt.SigningMethodHS256, pemOf(t, &k.rsa.PublicKey), claims(), "ec1")
	_, err = v.VerifyContext(t.Context(), tok)
	wantInvalid(t, err, tok, "signature is invalid")
}

func TestJWKSUnknownKIDRefresh(t *testing.T) {
	k := loadKeys()
	srv := newJWKSServer(t, jwk{kid: "old", key: &k.ec.PublicKey})
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{
		JWKSURL:               srv.URL,
		JWKSRefreshUnknownKID: rate.NewLimiter(rate.Inf, 1), // permissive
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyContext(t.Context(), signToken(t, jwt.SigningMethodES256, k.ec, claims(), "old")); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates: the old key is gone, a new one is served.
	srv.serve(t, jwk{kid: "new", key: &k.ec2.PublicKey})
	before := srv.fetches.Load()
	if _, err := v.VerifyContext(t.Context(), signToken(t, jwt.SigningMethodES256, k.ec2, claims(), "new")); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if got := srv.fetches.Load(); got != before+1 {
		t.Errorf("fetches = %d, want %d", got, before+1)
	}
	// The refresh replaced the set: the revoked key is refused.
	tok := signToken(t, jwt.SigningMethodES256, k.ec, claims(), "old")
	_, err = v.VerifyContext(t.Context(), tok)
	wantInvalid(t, err, tok, "signing key is unknown")
}

func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	k := loadKeys()
	srv := newJWKSServer(t, jwk{kid: "a", key: &k.ec.PublicKey})
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{
		JWKSURL:               srv.URL,
		JWKSRefreshUnknownKID: rate.NewLimiter(rate.Every(time.Hour), 1),
		JWKSTimeout:           200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := srv.fetches.Load()
	// The first unknown kid refreshes; the next ones, within the limit,
	// fail fast without fetching.
	for i, kid := range []string{"x1", "x2", "x3"} {
		tok := signToken(t, jwt.SigningMethodES256, k.ec, claims(), kid)
		t0 := time.Now()
		_, err := v.VerifyContext(t.Context(), tok)
		wantInvalid(t, err, tok, "signing key is unknown")
		if d := time.Since(t0); d > time.Second {
			t.Errorf("unknown kid %d took %v", i, d)
		}
	}
	if got := srv.fetches.Load() - start; got != 1 {
		t.Errorf("unknown kids caused %d fetches, want 1", got)
	}
}

// refreshGoroutines counts the goroutines running jwkset's refresh loop.
func refreshGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "jwkset.NewStorageFromHTTP.func")
}

func TestJWKSBackgroundRefreshStopsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := loadKeys()
	srv := newJWKSServer(t, jwk{kid: "old", key: &k.ec.PublicKey})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	defer srv.Close()

	base := refreshGoroutines()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	v, err := auth.NewVerifierContext(ctx, auth.VerifierOptions{
		JWKSURL:               srv.URL,
		JWKSHTTPClient:        &http.Client{Transport: tr},
		JWKSRefreshInterval:   20 * time.Millisecond,
		JWKSRefreshUnknownKID: rate.NewLimiter(0, 0), // only the background refresh may see new keys
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := refreshGoroutines(); got != base+1 {
		t.Fatalf("%d refresh goroutines, want %d", got, base+1)
	}
	srv.serve(t, jwk{kid: "new", key: &k.ec2.PublicKey})
	tok := signToken(t, jwt.SigningMethodES256, k.ec2, claims(), "new")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := v.VerifyContext(t.Context(), tok); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the background refresh never served the new key: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	deadline = time.Now().Add(5 * time.Second)
	for refreshGoroutines() != base {
		if time.Now().After(deadline) {
			t.Fatal("the refresh goroutine still runs after its context was cancelled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fetches := srv.fetches.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.fetches.Load(); got != fetches {
		t.Errorf("%d fetches after cancel", got-fetches)
	}
	// The keys last fetched keep working.
	if _, err := v.VerifyContext(t.Context(), tok); err != nil {
		t.Errorf("after cancel: %v", err)
	}
}

func TestJWKSOptions(t *testing.T) {
	k := loadKeys()
	t.Run("plain http refused off loopback", func(t *testing.T) {
		_, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{JWKSURL: "http://idp.example/jwks"})
		if err == nil || !strings.Contains(err.Error(), "https") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("not a URL", func(t *testing.T) {
		_, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{JWKSURL: "idp.example/jwks"})
		if err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("endpoint down at start", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		var errs []error
		var mu sync.Mutex
		v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{
			JWKSURL:               srv.URL,
			JWKSRefreshUnknownKID: rate.NewLimiter(0, 0),
			OnJWKSError: func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			},
		})
		if err != nil {
			t.Fatalf("NewVerifierContext = %v; want a Verifier that reports the fetch error", err)
		}
		mu.Lock()
		n := len(errs)
		mu.Unlock()
		if n == 0 {
			t.Error("the failed first fetch was not reported")
		}
		tok := signToken(t, jwt.SigningMethodES256, k.ec, claims(), "k")
		_, err = v.VerifyContext(t.Context(), tok)
		wantInvalid(t, err, tok, "signing key is unknown")
	})
	t.Run("oversized response", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 2<<20) + `]}`))
		}))
		defer srv.Close()
		var got error
		_, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{JWKSURL: srv.URL, OnJWKSError: func(err error) { got = err }})
		if err != nil || got == nil {
			t.Fatalf("NewVerifierContext = %v, reported %v; want a reported fetch error", err, got)
		}
	})
}
