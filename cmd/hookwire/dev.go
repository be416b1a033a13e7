package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/web"
)

// devDefaults fills in what --dev generates: secrets and a permissive Origin.
func devDefaults(cfg *config) {
	if len(cfg.APIKeys) == 0 && cfg.APIKeysFile == "" {
		cfg.APIKeys = []string{"hw_dev_" + strings.ToLower(rand.Text())}
	}
	if cfg.JWTSecret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		cfg.JWTSecret = hex.EncodeToString(b)
	}
	if cfg.WebhookSecret == "" {
		cfg.WebhookSecret = auth.NewWebhookSecret()
	}
	if len(cfg.AllowedOrigins) == 0 {
		cfg.AllowedOrigins = []string{"*"}
	}
}

const demoUser = "demo"

func devToken(cfg config, ttl time.Duration) string {
	tok, err := auth.SignWith([]byte(cfg.JWTSecret), auth.Claims{
		Subject: demoUser, Channels: []string{"*"}, Expiry: time.Now().Add(ttl),
	}, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		panic(err) // HS256 with a non-empty key cannot fail
	}
	return tok
}

func curlLine(cfg config, base string) string {
	return fmt.Sprintf(`curl -i %s/v1/events -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"type":"balance.updated","users":["%s"],"data":{"balance":"10.00"}}'`,
		base, devKey(cfg), demoUser)
}

// devKey is the key the dev banner shows: the first configured one, in the
// plain "key" form, or a placeholder when keys come from a file.
func devKey(cfg config) string {
	if len(cfg.APIKeys) == 0 {
		return "<a key from HOOKWIRE_API_KEYS_FILE>"
	}
	k := cfg.APIKeys[0]
	if parts := strings.SplitN(k, ":", 3); len(parts) >= 2 {
		k = parts[1] // name:key[:scope]
	}
	return k
}

func baseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// mountDev serves the demo page and a token endpoint for it.
func mountDev(e *echo.Echo, cfg config) {
	// Echo's static handler answers missing files with its 404, which
	// the error handler renders as problem+json like every other error.
	e.StaticFS("/", web.Assets())
	e.GET("/dev/token", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{
			"token": devToken(cfg, time.Hour),
			"user":  demoUser,
			"curl":  curlLine(cfg, "http://"+c.Request().Host),
		})
	})
}

func printDev(w io.Writer, cfg config, addr string) {
	base := baseURL(addr)
	fmt.Fprintf(w, `
hookwire is running in development mode (%s broker). These secrets are generated for this run:

  HOOKWIRE_API_KEYS=%s
  HOOKWIRE_JWT_SECRET=%s
  HOOKWIRE_WEBHOOK_SECRET=%s

Demo page (connects as user %q):  %s/
Subscriber token for user %q (24h): %s

Post a balance update:
  %s

Watch it arrive:
  go run ./cmd/hookwire tail --url %s --token %s

`, brokerName(cfg), strings.Join(cfg.APIKeys, ","), cfg.JWTSecret, cfg.WebhookSecret, demoUser, base, demoUser,
		devToken(cfg, 24*time.Hour), curlLine(cfg, base), base, devToken(cfg, 24*time.Hour))
}
