package auth_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookwire/hookwire/auth"
)

// The official library's test secret, and a second one for rotation.
const (
	whSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	whSecretNew = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

var whBody = []byte(`{"type":"balance.updated","users":["42"],"data":{"balance":"10.00"}}`)

// whHeader returns Standard Webhooks headers for id, ts and signature.
func whHeader(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(auth.HeaderWebhookID, id)
	h.Set(auth.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(auth.HeaderWebhookSignature, sig)
	return h
}

// fixedClock returns a WebhookOptions whose clock reads now.
func fixedClock(now time.Time) auth.WebhookOptions {
	return auth.WebhookOptions{Now: func() time.Time { return now }}
}

func mustSign(t testing.TB, secret, id string, ts time.Time, body []byte) string {
	t.Helper()
	sig, err := auth.SignWebhook(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestWebhookOfficialLibrarySignsWeVerify(t *testing.T) {
	official, err := standardwebhooks.NewWebhook(whSecret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_700_000_000, 0)
	sig, err := official.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, whBody)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewWebhookVerifier([]string{whSecret}, fixedClock(ts.Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(whHeader("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, sig), whBody)
	if err != nil || id != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Fatalf("Verify = %q, %v", id, err)
	}
	// Byte for byte the same signature as ours.
	if ours := mustSign(t, whSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, whBody); ours != sig {
		t.Errorf("SignWebhook = %s, official %s", ours, sig)
	}
}

func TestWebhookWeSignOfficialLibraryVerifies(t *testing.T) {
	secret := auth.NewWebhookSecret()
	official, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // the official Verify reads the real clock
	h := whHeader("evt_1", now, mustSign(t, secret, "evt_1", now, whBody))
	if err := official.Verify(whBody, h); err != nil {
		t.Fatalf("official Verify: %v", err)
	}
	if err := official.Verify(append([]byte(nil), whBody[1:]...), h); err == nil {
		t.Error("official Verify accepted a changed body")
	}
	v, err := auth.NewWebhookVerifier([]string{secret}, auth.WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(h, whBody); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestWebhookVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v, err := auth.NewWebhookVerifier([]string{whSecret, " ", whSecretNew}, fixedClock(now))
	if err != nil {
		t.Fatal(err)
	}
	official, _ := standardwebhooks.NewWebhook(whSecret)
	officialSig, _ := official.Sign("evt_1", now, whBody)
	sigOld := mustSign(t, whSecret, "evt_1", now, whBody)
	sigNew := mustSign(t, whSecretNew, "evt_1", now, whBody)
	sigOther := mustSign(t, auth.NewWebhookSecret(), "evt_1", now, whBody)
	garbage := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))

	tests := []struct {
		name   string
		header http.Header
		body   []byte
		reason string // "" = accepted
	}{
		{"official signature", whHeader("evt_1", now, officialSig), whBody, ""},
		{"old secret during rotation", whHeader("evt_1", now, sigOld), whBody, ""},
		{"new secret during rotation", whHeader("evt_1", now, sigNew), whBody, ""},
		{"both secrets, sender rotating", whHeader("evt_1", now, sigOld+" "+sigNew), whBody, ""},
		{"only the second signature valid", whHeader("evt_1", now, garbage+" "+sigNew), whBody, ""},
		{"other versions ignored", whHeader("evt_1", now, "v1a,c2lnbmF0dXJl v2,xyz "+sigOld), whBody, ""},
		{"malformed v1 entries ignored", whHeader("evt_1", now, "v1,!!! v1, v1,AAAA , "+sigOld), whBody, ""},
		{"double spaces", whHeader("evt_1", now, "  "+garbage+"   "+sigOld+"  "), whBody, ""},
		{"unknown secret", whHeader("evt_1", now, sigOther), whBody, "no valid signature"},
		{"only other versions", whHeader("evt_1", now, "v1a,"+strings.TrimPrefix(sigOld, "v1,")), whBody, "no valid signature"},
		{"tampered body", whHeader("evt_1", now, sigOld), []byte(strings.Replace(string(whBody), "10.00", "99.00", 1)), "no valid signature"},
		{"reformatted body", whHeader("evt_1", now, sigOld), append(append([]byte(nil), whBody...), '\n'), "no valid signature"},
		{"empty body", whHeader("evt_1", now, sigOld), nil, "no valid signature"},
		{"other id", whHeader("evt_2", now, sigOld), whBody, "no valid signature"},
		{"other timestamp", whHeader("evt_1", now.Add(time.Second), sigOld), whBody, "no valid signature"},
		{"replayed old timestamp", whHeader("evt_1", now.Add(-5*time.Minute-time.Second), mustSign(t, whSecret, "evt_1", now.Add(-5*time.Minute-time.Second), whBody)), whBody, "too old"},
		{"timestamp from the future", whHeader("evt_1", now.Add(5*time.Minute+time.Second), mustSign(t, whSecret, "evt_1", now.Add(5*time.Minute+time.Second), whBody)), whBody, "too new"},
		{"missing id", deleted(whHeader("evt_1", now, sigOld), auth.HeaderWebhookID), whBody, "webhook-id header is missing"},
		{"missing timestamp", deleted(whHeader("evt_1", now, sigOld), auth.HeaderWebhookTimestamp), whBody, "webhook-timestamp header is missing"},
		{"missing signature", deleted(whHeader("evt_1", now, sigOld), auth.HeaderWebhookSignature), whBody, "webhook-signature header is missing"},
		{"blank signature", whHeader("evt_1", now, "   "), whBody, "webhook-signature header is missing"},
		{"repeated id", added(whHeader("evt_1", now, sigOld), auth.HeaderWebhookID, "evt_2"), whBody, "repeated"},
		{"timestamp in ms", set(whHeader("evt_1", now, sigOld), auth.HeaderWebhookTimestamp, strconv.FormatInt(now.UnixMilli(), 10)), whBody, "too new"},
		{"timestamp not a number", set(whHeader("evt_1", now, sigOld), auth.HeaderWebhookTimestamp, "yesterday"), whBody, "not a Unix time"},
		{"timestamp with a plus", set(whHeader("evt_1", now, sigOld), auth.HeaderWebhookTimestamp, "+1700000000"), whBody, "not a Unix time"},
		{"timestamp with leading zero", set(whHeader("evt_1", now, sigOld), auth.HeaderWebhookTimestamp, "01700000000"), whBody, "not a Unix time"},
		{"id with a newline", set(whHeader("evt_1", now, sigOld), auth.HeaderWebhookID, "evt\n1"), whBody, "control characters"},
		{"too many entries", whHeader("evt_1", now, strings.Repeat("v1a,x ", 40)+sigOld), whBody, "more than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(tt.header, tt.body)
			if tt.reason == "" {
				if err != nil || id != "evt_1" {
					t.Fatalf("Verify = %q, %v", id, err)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidSignature) || !strings.Contains(err.Error(), tt.reason) || id != "" {
				t.Fatalf("Verify = %q, %v; want ErrInvalidSignature containing %q", id, err, tt.reason)
			}
		})
	}
}

func deleted(h http.Header, k string) http.Header  { h.Del(k); return h }
func added(h http.Header, k, v string) http.Header { h.Add(k, v); return h }
func set(h http.Header, k, v string) http.Header   { h.Set(k, v); return h }

func TestWebhookTolerance(t *testing.T) {
	ts := time.Unix(1_700_000_000, 0)
	sig := mustSign(t, whSecret, "evt_1", ts, whBody)
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{ts.Add(5 * time.Minute), true},
		{ts.Add(-5 * time.Minute), true},
		{ts.Add(5*time.Minute + time.Second), false},
		{ts.Add(-5*time.Minute - time.Second), false},
	} {
		v, _ := auth.NewWebhookVerifier([]string{whSecret}, fixedClock(tt.now))
		if _, err := v.Verify(whHeader("evt_1", ts, sig), whBody); (err == nil) != tt.want {
			t.Errorf("now = ts%+v: err = %v, want ok=%v", tt.now.Sub(ts), err, tt.want)
		}
	}
	v, _ := auth.NewWebhookVerifier([]string{whSecret}, auth.WebhookOptions{Tolerance: time.Minute, Now: func() time.Time { return ts.Add(2 * time.Minute) }})
	if _, err := v.Verify(whHeader("evt_1", ts, sig), whBody); err == nil {
		t.Error("custom tolerance ignored")
	}
}

func TestNewWebhookVerifierErrors(t *testing.T) {
	for name, secrets := range map[string][]string{
		"none":          nil,
		"blank":         {" "},
		"no prefix":     {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"not base64":    {"whsec_not base64!"},
		"too short":     {"whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789"))},
		"second broken": {whSecret, "whsec_%%%"},
	} {
		_, err := auth.NewWebhookVerifier(secrets, auth.WebhookOptions{})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, s := range secrets {
			if b64 := strings.TrimPrefix(strings.TrimSpace(s), "whsec_"); len(b64) > 4 && strings.Contains(err.Error(), b64) {
				t.Errorf("%s: error %q echoes the secret", name, err)
			}
		}
	}
	if _, err := auth.SignWebhook("plain", "id", time.Now(), nil); err == nil {
		t.Error("SignWebhook accepted a bad secret")
	}
	a, b := auth.NewWebhookSecret(), auth.NewWebhookSecret()
	if a == b || !strings.HasPrefix(a, "whsec_") {
		t.Errorf("NewWebhookSecret = %q, %q", a, b)
	}
}

func FuzzWebhookSignatureHeader(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	v, err := auth.NewWebhookVerifier([]string{whSecret, whSecretNew}, fixedClock(now))
	if err != nil {
		f.Fatal(err)
	}
	valid := mustSign(f, whSecret, "evt_1", now, whBody)
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, s := range []string{
		valid, "v1a,x " + valid, "v1,", ",", "v1", "v1,!!!", "   ", "", "v1,,,", "v1,AAAA====",
		strings.Repeat("v1,x ", 40), "v1," + strings.Repeat("A", 44), "\x00v1,\xff",
	} {
		f.Add(s, ts)
	}
	f.Add(valid, "+1700000000")
	f.Add(valid, "-1")
	f.Add(valid, "99999999999999999999")
	f.Fuzz(func(t *testing.T, sig, timestamp string) {
		h := http.Header{}
		h.Set(auth.HeaderWebhookID, "evt_1")
		h.Set(auth.HeaderWebhookTimestamp, timestamp)
		h.Set(auth.HeaderWebhookSignature, sig)
		id, err := v.Verify(h, whBody)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidSignature) || id != "" {
				t.Fatalf("Verify = %q, %v", id, err)
			}
			return
		}
		// Only a header carrying a real signature over the canonical
		// timestamp passes.
		if timestamp != ts || !strings.Contains(sig, strings.TrimPrefix(valid, "v1,")) && !strings.Contains(sig, strings.TrimPrefix(mustSign(t, whSecretNew, "evt_1", now, whBody), "v1,")) {
			t.Fatalf("accepted signature %q with timestamp %q", sig, timestamp)
		}
	})
}
