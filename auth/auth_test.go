package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hookwire/hookwire/auth"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestVerify(t *testing.T) {
	v, err := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := auth.Sign(secret, auth.Claims{Subject: "42", Channels: []string{"prices.*"}, Expiry: time.Now().Add(time.Hour)})
	expired, _ := auth.Sign(secret, auth.Claims{Subject: "42", Expiry: time.Now().Add(-time.Hour)})
	wrongKey, _ := auth.Sign([]byte("another-secret-another-secret-xx"), auth.Claims{Subject: "42", Expiry: time.Now().Add(time.Hour)})
	noSub, _ := auth.Sign(secret, auth.Claims{Expiry: time.Now().Add(time.Hour)})
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "42"}).SignedString(secret)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"prices.*"}}).SignedString(secret)
	rs256 := signToken(t, jwt.SigningMethodRS256, loadKeys().rsa, claims(), "")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	badPattern, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"a b"}}).SignedString(secret)

	tests := []struct {
		name    string
		token   string
		wantErr string
	}{
		{"valid", good, ""},
		{"empty", "", "token is missing"},
		{"garbage", "not.a.jwt", "malformed"},
		{"expired", expired, "expired"},
		{"wrong key", wrongKey, "signature"},
		{"no sub", noSub, "sub"},
		{"no exp", noExp, "required claim"},
		{"HS512 with the same secret", hs512, ""},
		{"algorithm without a key", rs256, "algorithm is not accepted"},
		{"alg none", none, "algorithm is not accepted"},
		{"invalid pattern", badPattern, "pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyContext(t.Context(), tt.token)
			if tt.wantErr == "" {
				if err != nil || c.Subject != "42" || len(c.Channels) != 1 {
					t.Fatalf("Verify = %+v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Verify error = %v; want ErrInvalidToken containing %q", err, tt.wantErr)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Fatal("error echoes the token")
			}
		})
	}
}

func TestIssuerAudience(t *testing.T) {
	v, _ := auth.NewVerifierContext(t.Context(), auth.VerifierOptions{HMACSecret: secret, Issuer: "billing", Audience: "hookwire"})
	exp := time.Now().Add(time.Hour)
	ok, _ := auth.SignWith(secret, auth.Claims{Subject: "1", Expiry: exp}, "billing", "hookwire")
	badIss, _ := auth.SignWith(secret, auth.Claims{Subject: "1", Expiry: exp}, "other", "hookwire")
	badAud, _ := auth.SignWith(secret, auth.Claims{Subject: "1", Expiry: exp}, "billing", "other")
	if _, err := v.VerifyContext(t.Context(), ok); err != nil {
		t.Errorf("valid iss/aud: %v", err)
	}
	if _, err := v.VerifyContext(t.Context(), badIss); err == nil {
		t.Error("wrong issuer accepted")
	}
	if _, err := v.VerifyContext(t.Context(), badAud); err == nil {
		t.Error("wrong audience accepted")
	}
}

func TestChannelAllowed(t *testing.T) {
	c := auth.Claims{Channels: []string{"prices.*", "news", "user:42:*"}}
	tests := []struct {
		ch   string
		want bool
	}{
		{"prices.EURUSD", true},
		{"prices.", true},
		{"prices", false},
		{"news", true},
		{"news.sports", false},
		{"user:42:balance", true},
		{"user:43:balance", false},
	}
	for _, tt := range tests {
		if got := c.ChannelAllowed(tt.ch); got != tt.want {
			t.Errorf("ChannelAllowed(%q) = %v, want %v", tt.ch, got, tt.want)
		}
	}
	if (auth.Claims{}).ChannelAllowed("x") {
		t.Error("no channels claim allows a channel")
	}
	if !(auth.Claims{Channels: []string{"*"}}).ChannelAllowed("anything") {
		t.Error("* does not allow every channel")
	}
}

func FuzzChannelAllowed(f *testing.F) {
	f.Add("prices.*", "prices.EURUSD")
	f.Add("news", "news")
	f.Add("*", "x")
	f.Fuzz(func(t *testing.T, pattern, ch string) {
		if !auth.ValidPattern(pattern) {
			return
		}
		got := auth.Claims{Channels: []string{pattern}}.ChannelAllowed(ch)
		prefix, wild := strings.CutSuffix(pattern, "*")
		want := pattern == ch || (wild && strings.HasPrefix(ch, prefix))
		if got != want {
			t.Fatalf("ChannelAllowed(%q, %q) = %v", pattern, ch, got)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	k := bareKeys(t, []string{"alpha", " ", "beta"})
	if k.Len() != 2 {
		t.Fatalf("Len = %d", k.Len())
	}
	if name, ok := checkKey(k, "beta"); !ok || name != "key3" {
		t.Errorf("beta = %q, %v", name, ok)
	}
	for _, bad := range []string{"", "alph", "alphaa", "BETA"} {
		if _, ok := checkKey(k, bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
