package ingest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/problem"
)

// keyChecker maps a publisher API key to the publisher and its scope.
// auth.APIKeys and auth.KeyRing implement it (in constant time).
type keyChecker interface {
	Publisher(key string) (auth.Publisher, bool)
}

// webhookVerifier checks Standard Webhooks signatures over the raw body
// and returns the webhook-id. auth.WebhookVerifier implements it.
type webhookVerifier interface {
	Verify(h http.Header, body []byte) (id string, err error)
}

// webhookPublisher is the publisher of signed requests: the signing secret
// grants every channel and type.
var webhookPublisher = auth.Publisher{Name: "webhook"}

// caller is who sent a request, once authenticated.
type caller struct {
	pub auth.Publisher
	// webhookID is the request's webhook-id when it was signed: the
	// idempotency key of events that carry no id.
	webhookID string
}

// signed reports whether the request carries Standard Webhooks headers
// rather than an Authorization header.
func signed(r *http.Request) bool {
	return r.Header.Get(echo.HeaderAuthorization) == "" && r.Header.Get(auth.HeaderWebhookSignature) != ""
}

// verifySignature authenticates a signed request over its raw body.
func (h *Handler) verifySignature(r *http.Request, body []byte) (caller, error) {
	if h.webhooks == nil {
		return caller{}, unauthorized("signed requests are not enabled on this server: send Authorization: Bearer <API key>", `Bearer realm="hookwire"`)
	}
	id, err := h.webhooks.Verify(r.Header, body)
	if err != nil {
		// The verifier's text is safe to show: it names no secret.
		return caller{}, unauthorized(err.Error(), `Bearer realm="hookwire"`)
	}
	return caller{pub: webhookPublisher, webhookID: id}, nil
}

// scope refuses an event its publisher may not post.
func scope(c caller, ev *bridge.Event) error {
	if c.pub.Allows(ev.Channel, ev.Type) {
		return nil
	}
	what := "event type " + ev.Type
	if ev.Channel != "" && !c.pub.Allows(ev.Channel, "") && !c.pub.Allows(ev.Channel, ev.Type) {
		what = "channel " + ev.Channel
	}
	return problem.Wrap(problem.Forbidden.New(fmt.Sprintf("the key %q may not publish %s", c.pub.Name, what)), nil)
}

// webhookEventID derives the idempotency key of an event posted without an
// id in a signed request: the webhook-id, so that a redelivery of the same
// webhook is a duplicate; in a batch, suffixed by the event's position.
func webhookEventID(webhookID string, batchIndex int) string {
	if batchIndex < 0 {
		return webhookID
	}
	return webhookID + "#" + strconv.Itoa(batchIndex)
}

// limiters holds one token bucket per publisher. Publishers are few (one
// per configured key), so the map needs no expiry.
type limiters struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	byPub map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &limiters{rate: rate.Limit(perSecond), burst: burst, byPub: make(map[string]*rate.Limiter)}
}

// errRateLimited carries how long to wait.
type errRateLimited struct{ wait time.Duration }

func (e *errRateLimited) Error() string { return "rate limited" }

// take spends n events of pub's budget, or returns a 429 saying when to
// retry. A request larger than the burst can never pass and is refused
// with a hint to split it.
func (l *limiters) take(pub string, n int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	lim := l.byPub[pub]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.byPub[pub] = lim
	}
	l.mu.Unlock()
	if n > l.burst {
		return rateLimited(fmt.Sprintf("%d events exceed this key's burst of %d; split the batch", n, l.burst), time.Second)
	}
	now := time.Now()
	r := lim.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return rateLimited(fmt.Sprintf("this key may publish %g events per second", float64(l.rate)), d)
	}
	return nil
}

func rateLimited(detail string, wait time.Duration) error {
	e := problem.Wrap(problem.RateLimited.New(detail), &errRateLimited{wait})
	e.Header = http.Header{}
	e.Header.Set(echo.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	return e
}
