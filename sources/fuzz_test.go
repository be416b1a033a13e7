package sources

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v82/webhook"
)

// lax is a tolerance that accepts any timestamp, so the fuzzers compare
// signature checking with oracles that ignore time.
const lax = time.Duration(math.MaxInt64)

// FuzzStripeSignature: the oracle is Stripe's library. Whatever this
// package accepts, ValidatePayloadIgnoringTolerance accepts; whatever
// Stripe accepts with a t, this package accepts; the parser never panics.
func FuzzStripeSignature(f *testing.F) {
	body := []byte(`{"id":"evt_1"}`)
	good := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeSecret, Timestamp: time.Unix(1700000000, 0)}).Header
	for _, s := range []string{good, good + ",v1=zz", "v1=00,t=1", "t=1", "t=-5,v1=" + strings.Repeat("ab", 32), "t=1,v1=a=b", "", ",", "t=01700000000," + good[len("t=1700000000,"):], "t=1700000000,v0=00," + good[len("t=1700000000,"):]} {
		f.Add(s, body)
	}
	vf := &verifier{scheme: SchemeStripe, keys: [][]byte{[]byte(stripeSecret)}, tolerance: lax}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		s, perr := parseStripeSignature(header)
		err := vf.verifyStripe(http.Header{"Stripe-Signature": {header}}, body, time.Unix(1700000000, 0))
		oracle := webhook.ValidatePayloadIgnoringTolerance(body, header, stripeSecret)
		if err == nil && oracle != nil {
			t.Fatalf("accepted what Stripe refuses (%v): %q", oracle, header)
		}
		if oracle == nil && perr == nil && err != nil && header != "" {
			t.Fatalf("refused what Stripe accepts: %v: %q", err, header)
		}
		if err != nil && !errors.Is(err, ErrUnverified) {
			t.Fatalf("error %v is not ErrUnverified", err)
		}
		if perr == nil && len(s.sigs) == 0 {
			t.Fatal("parsed without signatures")
		}
	})
}

// FuzzStandardSignature: the oracle for v1 is the Standard Webhooks
// library (which ignores time in VerifyIgnoringTimestamp), and for v1a
// crypto/ed25519 over the documented text.
func FuzzStandardSignature(f *testing.F) {
	body := []byte(`{"a":1}`)
	wh, _ := standardwebhooks.NewWebhook(swSecret)
	good, _ := wh.Sign("msg_1", time.Unix(1700000000, 0), body)
	ed := base64.StdEncoding.EncodeToString(ed25519.Sign(swKey, []byte("msg_1.1700000000."+string(body))))
	for _, s := range []string{good, "v1a," + ed, good + " v1a," + ed, "v2,abc " + good, "v1,", "v1," + strings.Repeat("A", 44), " ", good + "\n"} {
		f.Add("msg_1", "1700000000", s, body)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	vf := &verifier{scheme: SchemeStandardWebhooks, keys: [][]byte{key}, edKeys: []ed25519.PublicKey{swKey.Public().(ed25519.PublicKey)}, tolerance: lax}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		v1, v1a, perr := parseStandardSignatures([]string{sig})
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
		gotID, err := vf.verifyStandard(h, body, time.Unix(1700000000, 0))
		if err != nil {
			if !errors.Is(err, ErrUnverified) {
				t.Fatalf("error %v is not ErrUnverified", err)
			}
			return
		}
		if perr != nil || gotID != id {
			t.Fatalf("accepted with a parse error %v or id %q", perr, gotID)
		}
		// Accepted: by a v1 the library accepts too, or by a valid v1a.
		libOK := wh.VerifyIgnoringTimestamp(body, h) == nil
		edOK := false
		for _, s := range v1a {
			edOK = edOK || ed25519.Verify(swKey.Public().(ed25519.PublicKey), []byte(id+"."+ts+"."+string(body)), s)
		}
		if !libOK && !edOK {
			t.Fatalf("accepted what no oracle accepts: %q %q %q (%d v1)", id, ts, sig, len(v1))
		}
	})
}

// FuzzSlackSignature: the oracle is the documented algorithm, computed
// here independently: v0= and the lower-case hex HMAC-SHA256 of
// "v0:<ts>:<body>" (any letter case of the hex is accepted).
func FuzzSlackSignature(f *testing.F) {
	body := []byte(`{"type":"event_callback"}`)
	good := "v0=" + macHex(sha256.New, slackSecret, "v0:1700000000:"+string(body))
	for _, s := range []string{good, strings.ToUpper(good), "v0=", "v1=" + good[3:], good + "0", "v0=zz"} {
		f.Add("1700000000", s, body)
	}
	vf := &verifier{scheme: SchemeSlack, keys: [][]byte{[]byte(slackSecret)}, tolerance: lax}
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{"X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {sig}}
		err := vf.verifySlack(h, body, time.Unix(1700000000, 0))
		want := "v0=" + macHex(sha256.New, slackSecret, "v0:"+ts+":"+string(body))
		_, tsOK := parseUnix(ts)
		oracle := tsOK && strings.EqualFold(sig, want) && strings.HasPrefix(sig, "v0=")
		if (err == nil) != oracle {
			t.Fatalf("verify %v, oracle %v: %q %q", err, oracle, ts, sig)
		}
		if _, perr := parseSlackSignature(sig); (perr == nil) && len(sig) != 67 {
			t.Fatalf("parsed %q", sig)
		}
	})
}

// FuzzMACHeader: the hmac, github and shopify header parser against an
// independent encoding of the MAC (the oracle), in hex and base64, with
// and without a prefix.
func FuzzMACHeader(f *testing.F) {
	body := []byte(`{"x":1}`)
	m := mac(sha512.New, hmacSecret, string(body))
	for _, s := range []string{"sha512=" + hex.EncodeToString(m), "sha512=" + base64.StdEncoding.EncodeToString(m), hex.EncodeToString(m), "sha512=", "sha512=" + base64.StdEncoding.EncodeToString(m) + "\n"} {
		f.Add(s, "sha512=", true, body)
		f.Add(s, "", false, body)
	}
	f.Fuzz(func(t *testing.T, header, prefix string, b64 bool, body []byte) {
		vf := &verifier{scheme: SchemeHMAC, keys: [][]byte{[]byte(hmacSecret)}, header: "X-Signature", newHash: sha512.New, base64: b64, prefix: prefix}
		_, err := vf.verify(http.Header{"X-Signature": {header}}, body, time.Now())
		m := mac(sha512.New, hmacSecret, string(body))
		enc, ok := strings.CutPrefix(header, prefix)
		var oracle bool
		if b64 {
			oracle = ok && enc == base64.StdEncoding.EncodeToString(m)
		} else {
			oracle = ok && strings.EqualFold(enc, hex.EncodeToString(m))
		}
		if header == "" {
			oracle = false
		}
		if (err == nil) != oracle {
			t.Fatalf("verify %v, oracle %v: %q prefix %q b64 %v", err, oracle, header, prefix, b64)
		}
		sig, perr := parseMACHeader(header, prefix, b64, sha512.Size)
		if perr == nil && len(sig) != sha512.Size {
			t.Fatalf("parsed %d bytes", len(sig))
		}
	})
}

// FuzzTimestamp: parseUnix takes exactly the canonical decimal form.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"0", "1700000000", "-1", "+1", "01", " 1", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, ok := parseUnix(s)
		if ok != (strconv.FormatInt(at.Unix(), 10) == s) {
			t.Fatalf("%q: %v %v", s, at, ok)
		}
	})
}

// FuzzEvents: any verified body runs every rule without a panic, and
// every event made is valid.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{customerUpdated, `{}`, `[]`, `null`, `{"type":"customer.updated","data":{"object":{"metadata":{"user_id":5}}}}`, `{"type":"customer.updated","data":{"object":{"id":"a b","metadata":{"user_id":""}}}}`, `1e999`} {
		f.Add([]byte(s))
	}
	set := mustParse(f, strings.Replace(strings.Replace(stripeRules, "scheme: stripe", "scheme: github", 1), "secret_env: STRIPE", "secret_env: GITHUB", 1))
	src := mustSource(f, set, "stripe")
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := src.Verify(context.Background(), githubHeaders(githubSecret, body, time.Now()), body, time.Now())
		if err != nil {
			if !errors.Is(err, ErrBody) {
				t.Fatalf("signed body refused: %v", err)
			}
			return
		}
		evs, _ := src.Events(context.Background(), d)
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid event %+v: %v", ev, err)
			}
		}
		_ = src.DryRun(nil, body, time.Now())
	})
}

// FuzzForm: any form body parses without a panic into an object whose
// JSON is the data, or is refused with an error that does not quote it.
func FuzzForm(f *testing.F) {
	for _, s := range []string{slashCommand, blockActions("U1"), "", "a=%zz", "a=1;b=2", "payload=%7B%22a%22%3A1%7D", "payload=%7B", "a=%ff", "&&=&=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		parsed, data, err := parseForm(body)
		if err != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("data %q is not a JSON object: %v", data, err)
		}
		if len(m) != len(parsed) {
			t.Fatalf("data has %d fields, parsed %d", len(m), len(parsed))
		}
	})
}
