package ingest

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/problem"
)

// TestAccept: events decoded by another route go through the same checks
// as posted ones (validate, scope, prepare, rate) and are appended
// together; one bad event fails the call before anything is appended.
func TestAccept(t *testing.T) {
	st := &fakeStream{}
	h := New(st, nil, Options{PublishRate: 2})
	pub := auth.Publisher{Name: "stripe", Types: []string{"stripe.*"}}
	ctx := t.Context()

	evs := []*bridge.Event{
		{Type: "stripe.charge", Users: []string{"42", "42"}},
		{ID: "given", Type: "stripe.refund", Channel: "billing"},
	}
	res, err := h.Accept(ctx, pub, evs)
	if err != nil || len(res) != 2 || len(st.appended()) != 1 {
		t.Fatalf("Accept = %v, %v; %d appends", res, err, len(st.appended()))
	}
	if evs[0].ID == "" || len(evs[0].Users) != 1 || evs[1].ID != "given" {
		t.Errorf("not prepared: %+v %+v", evs[0], evs[1])
	}

	status := func(err error) int {
		var pe *problem.Error
		if !errors.As(err, &pe) {
			return 0
		}
		return pe.Details.Status
	}
	for name, tc := range map[string]struct {
		evs  []*bridge.Event
		want int
	}{
		"invalid":       {[]*bridge.Event{{Type: "stripe.x", Users: []string{"1"}}, {Type: "", Users: []string{"1"}}}, http.StatusBadRequest},
		"out of scope":  {[]*bridge.Event{{Type: "shopify.order", Users: []string{"1"}}}, http.StatusForbidden},
		"past the rate": {[]*bridge.Event{{Type: "stripe.a", Users: []string{"1"}}, {Type: "stripe.b", Users: []string{"1"}}, {Type: "stripe.c", Users: []string{"1"}}}, http.StatusTooManyRequests},
	} {
		n := len(st.appended())
		if _, err := h.Accept(ctx, pub, tc.evs); status(err) != tc.want {
			t.Errorf("%s: %v, want %d", name, err, tc.want)
		}
		if len(st.appended()) != n {
			t.Errorf("%s: appended anyway", name)
		}
	}
	st.err = bridge.ErrUnavailable
	if _, err := h.Accept(ctx, auth.Publisher{Name: "any"}, []*bridge.Event{{Type: "t", Users: []string{"1"}}}); status(err) != http.StatusServiceUnavailable {
		t.Errorf("broker down: %v, want 503", err)
	}
}
