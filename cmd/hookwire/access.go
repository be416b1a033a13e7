package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/problem"
)

// newVerifier builds the subscriber token verifier from every configured
// key: the HMAC secret, PEM public keys and a JWKS URL (refreshed in the
// background until ctx ends).
func newVerifier(ctx context.Context, cfg config, logger *slog.Logger) (*auth.Verifier, error) {
	opts := auth.VerifierOptions{
		HMACSecret: []byte(cfg.JWTSecret),
		JWKSURL:    cfg.JWKSURL,
		Issuer:     cfg.JWTIssuer,
		Audience:   cfg.JWTAudience,
		Leeway:     30 * time.Second,
		OnJWKSError: func(err error) {
			logger.Warn("JWKS refresh failed", "err", err)
		},
	}
	if !cfg.Dev {
		opts.MinHMACLen = minSecretLen
	}
	if cfg.JWTPublicKey != "" {
		pem, err := os.ReadFile(cfg.JWTPublicKey)
		if err != nil {
			return nil, fmt.Errorf("HOOKWIRE_JWT_PUBLIC_KEY_FILE: %w", err)
		}
		opts.PublicKeyPEM = pem
	}
	v, err := auth.NewVerifierContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("subscriber tokens: %w", err)
	}
	return v, nil
}

// newKeys returns the publisher keys, from HOOKWIRE_API_KEYS or from a file,
// and watch, which reloads the file when it changes until its ctx ends (it
// returns at once without a file). The caller runs watch and waits for it.
func newKeys(cfg config, logger *slog.Logger) (ring *auth.KeyRing, watch func(context.Context), err error) {
	opts := auth.APIKeyOptions{}
	if !cfg.Dev {
		opts.MinKeyLen = minKeyLen
	}
	if cfg.APIKeysFile == "" {
		keys, err := auth.ParseAPIKeys(cfg.APIKeys, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("HOOKWIRE_API_KEYS: %w", err)
		}
		return auth.NewKeyRing(keys, opts), func(context.Context) {}, nil
	}
	keys, err := auth.LoadAPIKeysFile(cfg.APIKeysFile, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("HOOKWIRE_API_KEYS_FILE: %w", err)
	}
	ring = auth.NewKeyRing(keys, opts)
	watch = func(ctx context.Context) {
		ring.Watch(ctx, cfg.APIKeysFile, 0, func(err error) {
			if err != nil {
				logger.Warn("publisher keys file not reloaded; the previous keys stay", "path", cfg.APIKeysFile, "err", err)
				return
			}
			logger.Info("publisher keys reloaded", "path", cfg.APIKeysFile, "publishers", ring.Keys().Names())
		})
	}
	return ring, watch, nil
}

// ipExtractor names the client IP: the peer address, or, behind the
// configured proxies only, the X-Forwarded-For entry they vouch for.
func ipExtractor(cidrs []string) (echo.IPExtractor, error) {
	if len(cidrs) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, c := range cidrs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("HOOKWIRE_TRUSTED_PROXIES: %w", err)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

// upgradeLimit bounds WebSocket upgrades per client IP (0: no limit), with
// bursts of the same number (at least 1). Refusals are 429 problems with
// Retry-After.
func upgradeLimit(perSecond float64) echo.MiddlewareFunc {
	if perSecond <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(perSecond), Burst: max(1, int(math.Ceil(perSecond))), ExpiresIn: 3 * time.Minute,
	})
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store:               store,
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			return problem.Wrap(problem.RateLimited.New("too many connections from this address; retry later"), nil)
		},
		ErrorHandler: func(c echo.Context, err error) error {
			return problem.Wrap(problem.Forbidden.New("the client address could not be determined"), err)
		},
	})
}
