package sources

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStripeWebhook: verify a Stripe customer.updated and run its
// four rules (two make events, one fails, one does not match).
func BenchmarkStripeWebhook(b *testing.B) {
	set := mustParse(b, stripeRules)
	src := mustSource(b, set, "stripe")
	body := []byte(customerUpdated)
	now := time.Now()
	h := stripeHeaders(stripeSecret, body, now)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := src.Verify(ctx, h, body, now)
		if err != nil {
			b.Fatal(err)
		}
		if evs, _ := src.Events(ctx, d); len(evs) != 2 {
			b.Fatal(len(evs))
		}
	}
}

// BenchmarkParse: load and compile the file (at start and on each reload).
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		mustParse(b, stripeRules)
	}
}
