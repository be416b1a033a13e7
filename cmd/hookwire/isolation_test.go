package main

// The isolation suite: real replicas on one real Redis, a randomized model
// of users, token grants, connections and subscriptions, and every frame
// checked against what the model entitles the connection to (CONTRACT.md
// §2–3): user events reach every connection of the users, channel events
// every subscriber of the channel, events with both only those users'
// connections subscribed to the channel; a channel outside the token's
// `channels` patterns is refused (403 before the upgrade, a `forbidden`
// error frame at runtime). Run with -v to read the totals; a failure logs
// the seed, and HOOKWIRE_ISOLATION_SEED=<seed> replays the same model.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/internal/redistest"
)

// Channel names with prefix and case traps: `c.a` must not grant `c.ab`
// nor `d.x` `d.x1`, `c.*` must not grant `cc.a` but `c*` must, `C.a` is
// not `c.a`.
var isoChannels = []string{"c.a", "c.ab", "cc.a", "d.x", "d.x1", "d.y", "e:1", "C.a"}

// User ids with prefix, case, separator and encoding traps: an event for
// u1 must reach neither u10 nor U1 nor "u,1" nor "u 1".
var isoUsers = []string{"u1", "u10", "u11", "U1", "u.1", "ü1", "u 1", "u,1", "42", "042", "alice", "alice@example.com"}

// isoGhosts are addressed by events but never connect.
var isoGhosts = []string{"u100", "U10", "u1.", "ghost"}

// isoPatterns are the non-exact grant patterns (exact channel names are
// drawn from isoChannels); "x.*" grants nothing that exists. "*" is drawn
// separately, rarely.
var isoPatterns = []string{"c.*", "c*", "d.*", "e:*", "C*", "c.a*", "x.*"}

// isoGrants is the contract's rule, written independently of the server:
// a pattern is an exact name, or a prefix ending in "*".
func isoGrants(patterns []string, ch string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(ch, prefix) {
				return true
			}
		} else if p == ch {
			return true
		}
	}
	return false
}

type isoOp struct {
	op, channel, ref string
}

// isoConnSpec is one connection of the model.
type isoConnSpec struct {
	user    string
	claims  []string // the token's channels claim
	rep     int      // replica index
	request []string // channels= on the URL; may hold channels not granted
	ops     []isoOp  // runtime subscribe/unsubscribe, in order
}

// isoConn is an open connection and what it received.
type isoConn struct {
	isoConnSpec
	idx   int
	chans map[string]bool // the final subscriptions
	want  map[string]bool // the event ids it is entitled to
	s     *subscriber

	mu          sync.Mutex
	got         map[string]int            // event id -> frames
	first       map[string]map[string]any // event id -> first frame
	order       []string                  // ids in first-arrival order
	entitledGot int                       // distinct entitled ids received
	other       []string                  // frames that are not events
	closeErr    error
}

func (c *isoConn) String() string {
	chans := slices.Sorted(func(yield func(string) bool) {
		for ch := range c.chans {
			if !yield(ch) {
				return
			}
		}
	})
	return fmt.Sprintf("conn#%d{user=%q replica=%d claims=%q channels=%q}", c.idx, c.user, c.rep, c.claims, chans)
}

func (c *isoConn) record(f map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, _ := f["id"].(string)
	if f["type"] != "event" || id == "" {
		c.other = append(c.other, fmt.Sprint(f))
		return
	}
	c.got[id]++
	if c.got[id] == 1 {
		c.first[id] = f
		c.order = append(c.order, id)
		if c.want[id] {
			c.entitledGot++
		}
	}
}

// isoEvent is one published event.
type isoEvent struct {
	id      string
	typ     string
	users   []string // as posted; may repeat a user
	channel string
	pub     int // publisher, -1 for the fence
	seq     int // the publisher's request number
	cursor  string
}

func (ev *isoEvent) entitles(c *isoConn) bool {
	hasUser := slices.Contains(ev.users, c.user)
	if ev.channel == "" {
		return hasUser
	}
	if !c.chans[ev.channel] {
		return false
	}
	return len(ev.users) == 0 || hasUser
}

func (ev *isoEvent) String() string {
	return fmt.Sprintf("%s{users=%q channel=%q}", ev.id, ev.users, ev.channel)
}

func (ev *isoEvent) body() string {
	m := map[string]any{"id": ev.id, "type": ev.typ, "data": map[string]any{"id": ev.id}}
	if len(ev.users) > 0 {
		m["users"] = ev.users
	}
	if ev.channel != "" {
		m["channel"] = ev.channel
	}
	b, _ := json.Marshal(m)
	return string(b)
}

type isoSetup struct {
	refused, connected, subscribed, forbidden, unsubscribed int
}

// isoDial dials r's WebSocket endpoint with tok and channels.
func isoDial(r *replica, tok string, channels []string) (*websocket.Conn, *http.Response, error) {
	q := url.Values{"token": {tok}}
	if len(channels) > 0 {
		q.Set("channels", strings.Join(channels, ","))
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.base, "http")+"/v1/ws?"+q.Encode(), nil)
}

// isoOpen opens the connection sp describes: when sp.request holds a
// channel the token does not grant it asserts the 403, then connects with
// the granted ones; it runs sp.ops and asserts each answer.
func isoOpen(t *testing.T, reps []*replica, idx int, sp isoConnSpec, st *isoSetup) *isoConn {
	t.Helper()
	r := reps[sp.rep]
	tok := subToken(t, sp.user, sp.claims...)
	var granted []string
	for _, ch := range sp.request {
		if isoGrants(sp.claims, ch) {
			granted = append(granted, ch)
		}
	}
	if len(granted) < len(sp.request) {
		ws, resp, err := isoDial(r, tok, sp.request)
		switch {
		case err == nil:
			ws.Close()
			t.Errorf("conn#%d user %q claims %q: channels=%q upgraded, want 403", idx, sp.user, sp.claims, sp.request)
		case resp == nil || resp.StatusCode != http.StatusForbidden:
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("conn#%d user %q claims %q: channels=%q: %v status %d, want 403", idx, sp.user, sp.claims, sp.request, err, status)
		default:
			st.refused++
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	ws, resp, err := isoDial(r, tok, granted)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("conn#%d user %q claims %q: channels=%q: %v status %d", idx, sp.user, sp.claims, granted, err, status)
	}
	st.connected++
	s := collect(t, ws, 4096)
	if f := s.next(t); f["type"] != "welcome" || f["user"] != sp.user {
		t.Fatalf("conn#%d user %q: first frame %v", idx, sp.user, f)
	}
	c := &isoConn{isoConnSpec: sp, idx: idx, s: s, chans: map[string]bool{}, want: map[string]bool{},
		got: map[string]int{}, first: map[string]map[string]any{}}
	for _, ch := range granted {
		c.chans[ch] = true
	}
	for _, op := range sp.ops {
		if err := ws.WriteJSON(map[string]string{"op": op.op, "channel": op.channel, "ref": op.ref}); err != nil {
			t.Fatalf("conn#%d: write %v: %v", idx, op, err)
		}
		f := s.next(t)
		switch {
		case op.op == "unsubscribe":
			if f["type"] != "unsubscribed" || f["channel"] != op.channel || f["ref"] != op.ref {
				t.Errorf("%v: unsubscribe %q ref %s: got %v", c, op.channel, op.ref, f)
			}
			delete(c.chans, op.channel)
			st.unsubscribed++
		case isoGrants(sp.claims, op.channel):
			if f["type"] != "subscribed" || f["channel"] != op.channel || f["ref"] != op.ref {
				t.Errorf("%v: subscribe %q ref %s (granted): got %v, want subscribed", c, op.channel, op.ref, f)
			}
			c.chans[op.channel] = true
			st.subscribed++
		default:
			if f["type"] != "error" || f["code"] != "forbidden" || f["ref"] != op.ref {
				t.Errorf("%v: subscribe %q ref %s (not granted): got %v, want error forbidden", c, op.channel, op.ref, f)
			}
			st.forbidden++
		}
	}
	return c
}

// isoAuthMatrix checks user's token with claims against every channel:
// at the handshake (one channel per attempt: granted upgrades, anything
// else is 403) and at runtime on one connection (granted: subscribed,
// else an error frame with code forbidden). It returns how many checks
// it made.
func isoAuthMatrix(t *testing.T, r *replica, user string, claims []string) (handshakes, subscribes int) {
	t.Helper()
	tok := subToken(t, user, claims...)
	for _, ch := range isoChannels {
		ws, resp, err := isoDial(r, tok, []string{ch})
		granted := isoGrants(claims, ch)
		status := 0
		if resp != nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		switch {
		case granted && err != nil:
			t.Errorf("user %q claims %q: channels=%s: %v status %d, want an upgrade", user, claims, ch, err, status)
		case !granted && err == nil:
			t.Errorf("user %q claims %q: channels=%s upgraded, want 403", user, claims, ch)
		case !granted && status != http.StatusForbidden:
			t.Errorf("user %q claims %q: channels=%s: status %d, want 403", user, claims, ch, status)
		}
		if err == nil {
			ws.Close()
		}
		handshakes++
	}
	ws, _, err := isoDial(r, tok, nil)
	if err != nil {
		t.Fatalf("user %q: %v", user, err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f map[string]any
	if err := ws.ReadJSON(&f); err != nil || f["type"] != "welcome" {
		t.Fatalf("user %q: first frame %v %v", user, f, err)
	}
	for k, ch := range isoChannels {
		ref := fmt.Sprintf("m%d", k)
		if err := ws.WriteJSON(map[string]string{"op": "subscribe", "channel": ch, "ref": ref}); err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		f = nil
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("user %q: subscribe %s: %v", user, ch, err)
		}
		if isoGrants(claims, ch) {
			if f["type"] != "subscribed" || f["channel"] != ch || f["ref"] != ref {
				t.Errorf("user %q claims %q: subscribe %s: got %v, want subscribed", user, claims, ch, f)
			}
		} else if f["type"] != "error" || f["code"] != "forbidden" || f["ref"] != ref {
			t.Errorf("user %q claims %q: subscribe %s: got %v, want error forbidden", user, claims, ch, f)
		}
		subscribes++
	}
	return handshakes, subscribes
}

// isoPost posts body to base+path, retrying on 429, 503 and connection
// errors (the ids make retries idempotent). It returns the last status and
// body.
func isoPost(ctx context.Context, base, path, body string) (int, []byte) {
	var status int
	var b []byte
	for attempt := 0; attempt < 20; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		status, b = 0, nil
		if err == nil {
			status = resp.StatusCode
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		cancel()
		if status != 0 && status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return status, b
}

// isoPublish posts one request of events (one event: POST /v1/events;
// more, or batch set: the batch endpoint) and records their cursors.
func isoPublish(ctx context.Context, t *testing.T, base string, evs []*isoEvent, batch bool) {
	if !batch && len(evs) == 1 {
		ev := evs[0]
		status, b := isoPost(ctx, base, "/v1/events", ev.body())
		var res struct{ ID, Cursor string }
		json.Unmarshal(b, &res)
		// 200 duplicate only after a retried request.
		if (status != http.StatusAccepted && status != http.StatusOK) || res.ID != ev.id || res.Cursor == "" {
			t.Errorf("POST %v: %d %s", ev, status, b)
			return
		}
		ev.cursor = res.Cursor
		return
	}
	bodies := make([]string, len(evs))
	for i, ev := range evs {
		bodies[i] = ev.body()
	}
	status, b := isoPost(ctx, base, "/v1/events/batch", `{"events":[`+strings.Join(bodies, ",")+`]}`)
	var res struct {
		Results []struct {
			Status     int
			ID, Cursor string
		}
	}
	json.Unmarshal(b, &res)
	if status != http.StatusOK || len(res.Results) != len(evs) {
		t.Errorf("POST batch of %d: %d %s", len(evs), status, b)
		return
	}
	for i, r := range res.Results {
		if (r.Status != http.StatusAccepted && r.Status != http.StatusOK) || r.ID != evs[i].id || r.Cursor == "" {
			t.Errorf("POST batch: result %d for %v: %+v", i, evs[i], r)
			continue
		}
		evs[i].cursor = r.Cursor
	}
}

// isoRequest is one publisher request: one event, or a batch.
type isoRequest struct {
	evs   []*isoEvent
	batch bool
}

type isoTotals struct {
	connections, events, expected, delivered, missing, misrouted, duplicated, outOfOrder, malformed, otherFrames int
}

func (tt isoTotals) String() string {
	return fmt.Sprintf("connections=%d events=%d expected_deliveries=%d delivered=%d missing=%d misrouted=%d duplicated=%d out_of_order=%d malformed=%d other_frames=%d",
		tt.connections, tt.events, tt.expected, tt.delivered, tt.missing, tt.misrouted, tt.duplicated, tt.outOfOrder, tt.malformed, tt.otherFrames)
}

// isoRun publishes pubs (one goroutine per publisher, requests alternating
// between the replicas), then a fence event to every user in fenceUsers,
// collects frames on every connection until each has its fence and every
// event it is entitled to (or 20 s passed), and checks every connection
// against the model. Every connection's user must be in fenceUsers.
func isoRun(t *testing.T, reps []*replica, conns []*isoConn, pubs [][]isoRequest, fenceUsers []string) isoTotals {
	t.Helper()
	fence := &isoEvent{id: "fence", typ: "iso.fence", users: fenceUsers, pub: -1}
	var all []*isoEvent
	for _, reqs := range pubs {
		for _, rq := range reqs {
			all = append(all, rq.evs...)
		}
	}
	all = append(all, fence)
	byID := map[string]*isoEvent{}
	for _, ev := range all {
		if byID[ev.id] != nil {
			t.Fatalf("event id %s twice in the model", ev.id)
		}
		byID[ev.id] = ev
	}
	for _, c := range conns {
		if !fence.entitles(c) {
			t.Fatalf("%v is not addressed by the fence", c)
		}
		for _, ev := range all {
			if ev.entitles(c) {
				c.want[ev.id] = true
			}
		}
	}

	// Collect from now on.
	stop := make(chan struct{})
	var collectors sync.WaitGroup
	for _, c := range conns {
		collectors.Go(func() {
			for {
				select {
				case f := <-c.s.frames:
					c.record(f)
				case err := <-c.s.closed:
					c.mu.Lock()
					c.closeErr = err
					c.mu.Unlock()
					return
				case <-stop:
					return
				}
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	var pubWG sync.WaitGroup
	for p, reqs := range pubs {
		pubWG.Go(func() {
			for k, rq := range reqs {
				isoPublish(ctx, t, reps[(p+k)%len(reps)].base, rq.evs, rq.batch)
			}
		})
	}
	pubWG.Wait()
	isoPublish(ctx, t, reps[0].base, []*isoEvent{fence}, false)
	published := time.Since(start)

	deadline := time.Now().Add(20 * time.Second)
	for {
		done := true
		for _, c := range conns {
			c.mu.Lock()
			ok := c.got[fence.id] > 0 && c.entitledGot >= len(c.want)
			c.mu.Unlock()
			if !ok {
				done = false
				break
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each connection gets its events in cursor order and the fence is
	// the last event, so nothing should follow it; a short grace catches
	// stragglers that break that too.
	time.Sleep(250 * time.Millisecond)
	close(stop)
	collectors.Wait()
	t.Logf("published %d events in %v, all fences in %v", len(all), published.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	tt := isoTotals{connections: len(conns)}
	for _, ev := range all {
		if ev.cursor != "" {
			tt.events++
		}
	}
	var report []string
	note := func(format string, args ...any) {
		if len(report) < 60 {
			report = append(report, fmt.Sprintf(format, args...))
		}
	}
	for _, c := range conns {
		tt.expected += len(c.want)
		tt.otherFrames += len(c.other)
		for _, f := range c.other {
			note("%v: unexpected frame %s", c, f)
		}
		if c.closeErr != nil {
			note("%v: closed: %v", c, c.closeErr)
		}
		for id, n := range c.got {
			tt.delivered += n
			ev := byID[id]
			if ev == nil || !c.want[id] {
				tt.misrouted += n
				if ev == nil {
					note("%v: MISROUTED unknown event %v", c, c.first[id])
				} else {
					note("%v: MISROUTED %v", c, ev)
				}
				continue
			}
			if n > 1 {
				tt.duplicated += n - 1
				note("%v: %v delivered %d times", c, ev, n)
			}
			f := c.first[id]
			data, _ := f["data"].(map[string]any)
			ch, hasCh := f["channel"]
			if f["cursor"] != ev.cursor || f["event"] != ev.typ || data["id"] != id ||
				(ev.channel == "" && hasCh) || (ev.channel != "" && ch != ev.channel) {
				tt.malformed++
				note("%v: %v (cursor %s) arrived as %v", c, ev, ev.cursor, f)
			}
		}
		for id := range c.want {
			if c.got[id] == 0 && byID[id].cursor != "" {
				tt.missing++
				note("%v: MISSING %v", c, byID[id])
			}
		}
		// Events of one publisher arrive in its request order; the fence
		// arrives last.
		last := map[int]int{}
		fenced := false
		for _, id := range c.order {
			ev := byID[id]
			if ev == nil {
				continue
			}
			if fenced {
				tt.outOfOrder++
				note("%v: %v after the fence", c, ev)
				continue
			}
			if ev == fence {
				fenced = true
				continue
			}
			if s, ok := last[ev.pub]; ok && ev.seq < s {
				tt.outOfOrder++
				note("%v: %v (publisher %d request %d) after its request %d", c, ev, ev.pub, ev.seq, s)
			}
			last[ev.pub] = max(last[ev.pub], ev.seq)
		}
	}
	if tt.missing+tt.misrouted+tt.duplicated+tt.outOfOrder+tt.malformed+tt.otherFrames > 0 {
		sort.Strings(report)
		t.Errorf("isolation broken: %v\n%s", tt, strings.Join(report, "\n"))
	}
	return tt
}

// isoSeed is HOOKWIRE_ISOLATION_SEED, or the clock.
func isoSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("HOOKWIRE_ISOLATION_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("HOOKWIRE_ISOLATION_SEED=%q: %v", s, err)
		}
		return uint64(n)
	}
	return uint64(time.Now().UnixNano())
}

// TestIsolationProperty: a random model of 12 users with random grants and
// 40 connections over two replicas on one Redis; 400 random events from 4
// concurrent publishers (one through the batch endpoint) reach exactly the
// connections the routing rules entitle, once each.
func TestIsolationProperty(t *testing.T) {
	seed := isoSeed(t)
	t.Logf("seed %d (rerun with HOOKWIRE_ISOLATION_SEED=%d)", seed, seed)
	defer func() {
		if t.Failed() {
			t.Logf("failed with seed %d: HOOKWIRE_ISOLATION_SEED=%d go test -race -run 'TestIsolationProperty$' ./cmd/hookwire/", seed, seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	// sample returns n distinct elements of xs.
	sample := func(xs []string, n int) []string {
		p := rng.Perm(len(xs))
		out := make([]string, 0, n)
		for _, i := range p[:min(n, len(xs))] {
			out = append(out, xs[i])
		}
		return out
	}

	// The model: every draw happens here, before anything runs, so the
	// seed alone reproduces it.
	claims := map[string][]string{}
	for _, u := range isoUsers {
		switch x := rng.IntN(100); {
		case x < 15: // no channels claim
		case x < 20:
			claims[u] = []string{"*"}
		default:
			var ps []string
			for range 1 + rng.IntN(3) {
				if rng.IntN(2) == 0 {
					ps = append(ps, pick(isoChannels))
				} else {
					ps = append(ps, pick(isoPatterns))
				}
			}
			claims[u] = ps
		}
	}
	const nConns, nReplicas = 40, 2
	specs := make([]isoConnSpec, nConns)
	for i := range specs {
		u := pick(isoUsers)
		sp := isoConnSpec{user: u, claims: claims[u], rep: rng.IntN(nReplicas)}
		var granted, refused []string
		for _, ch := range isoChannels {
			if isoGrants(sp.claims, ch) {
				granted = append(granted, ch)
			} else {
				refused = append(refused, ch)
			}
		}
		sp.request = sample(granted, rng.IntN(4))
		if len(refused) > 0 && rng.IntN(100) < 30 {
			sp.request = append(sp.request, pick(refused))
			rng.Shuffle(len(sp.request), func(a, b int) { sp.request[a], sp.request[b] = sp.request[b], sp.request[a] })
		}
		if rng.IntN(3) == 0 {
			// Unsubscribe candidates: what it asked for, granted or not
			// (unsubscribing from a channel it is not on is a no-op).
			subscribed := slices.Clone(sp.request)
			for k := range 1 + rng.IntN(3) {
				op := isoOp{op: "subscribe", ref: fmt.Sprintf("r%d", k)}
				switch x := rng.IntN(100); {
				case x < 15 && len(subscribed) > 0:
					op.op, op.channel = "unsubscribe", pick(subscribed)
				case x < 60 && len(granted) > 0:
					op.channel = pick(granted) // possibly already subscribed
				case len(refused) > 0:
					op.channel = pick(refused)
				default:
					op.channel = pick(isoChannels)
				}
				if op.op == "subscribe" {
					subscribed = append(subscribed, op.channel)
				}
				sp.ops = append(sp.ops, op)
			}
		}
		specs[i] = sp
	}
	addressees := append(slices.Clone(isoUsers), isoGhosts...)
	const nEvents, nPubs = 400, 4
	kinds := map[string]int{}
	pubs := make([][]isoRequest, nPubs)
	pending := make([][]*isoEvent, nPubs)
	for i := range nEvents {
		p := i % nPubs
		ev := &isoEvent{id: fmt.Sprintf("iso-%03d", i), pub: p}
		switch x := rng.IntN(100); {
		case x < 35:
			ev.typ, ev.users = "iso.users", sample(addressees, 1+rng.IntN(3))
		case x < 65:
			ev.typ, ev.channel = "iso.channel", pick(isoChannels)
		case x < 90:
			ev.typ, ev.users, ev.channel = "iso.both", sample(addressees, 1+rng.IntN(3)), pick(isoChannels)
		default:
			// More than 8 users takes another path in the fan-out.
			ev.typ, ev.users = "iso.many", sample(addressees, 9+rng.IntN(len(addressees)-8))
			if rng.IntN(2) == 0 {
				ev.channel = pick(isoChannels)
			}
		}
		if len(ev.users) > 0 && rng.IntN(10) == 0 {
			ev.users = append(ev.users, pick(ev.users)) // a repeated user is delivered once
		}
		kinds[ev.typ]++
		// Publisher 3 uses the batch endpoint, 1..8 events a request.
		if p == nPubs-1 {
			pending[p] = append(pending[p], ev)
			if len(pending[p]) >= 1+rng.IntN(8) {
				pubs[p] = append(pubs[p], isoRequest{evs: pending[p], batch: true})
				pending[p] = nil
			}
			continue
		}
		pubs[p] = append(pubs[p], isoRequest{evs: []*isoEvent{ev}})
	}
	if len(pending[nPubs-1]) > 0 {
		pubs[nPubs-1] = append(pubs[nPubs-1], isoRequest{evs: pending[nPubs-1], batch: true})
	}
	for _, reqs := range pubs {
		for k, rq := range reqs {
			for _, ev := range rq.evs {
				ev.seq = k
			}
		}
	}
	var grants []string
	for _, u := range isoUsers {
		grants = append(grants, fmt.Sprintf("%q:%q", u, claims[u]))
	}
	t.Logf("grants: %s", strings.Join(grants, " "))

	rs := redistest.Start(t)
	reps := make([]*replica, nReplicas)
	for i := range reps {
		reps[i] = serveInProcess(t, prodEnv(rs.URL())).asReplica(t)
	}

	setupStart := time.Now()
	// The model's users, then one probe user per grant shape, so that
	// every trap is checked whatever the seed drew.
	matrix := map[string][]string{}
	for _, u := range isoUsers {
		matrix[u] = claims[u]
	}
	probes := [][]string{nil, {"*"}, {"c.a"}, {"d.x"}, {"c.a", "d.x"}}
	for _, p := range isoPatterns {
		probes = append(probes, []string{p})
	}
	for i, p := range probes {
		matrix[fmt.Sprintf("probe%d", i)] = p
	}
	var handshakes, subscribes, k int
	for _, u := range slices.Sorted(maps.Keys(matrix)) {
		h, s := isoAuthMatrix(t, reps[k%nReplicas], u, matrix[u])
		handshakes += h
		subscribes += s
		k++
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("authorization matrix in %v: %d users x %d channels, %d handshakes, %d runtime subscribes",
		time.Since(setupStart).Round(time.Millisecond), len(matrix), len(isoChannels), handshakes, subscribes)

	setupStart = time.Now()
	var st isoSetup
	conns := make([]*isoConn, nConns)
	for i, sp := range specs {
		conns[i] = isoOpen(t, reps, i, sp, &st)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("setup in %v: connected=%d refused_403=%d runtime subscribed=%d forbidden=%d unsubscribed=%d",
		time.Since(setupStart).Round(time.Millisecond), st.connected, st.refused, st.subscribed, st.forbidden, st.unsubscribed)

	tt := isoRun(t, reps, conns, pubs, isoUsers)
	t.Logf("isolation: seed=%d events by kind %v; %v", seed, kinds, tt)
}

// TestIsolationAcrossUsersWithSameConnectionsCount: events with users and
// a channel where the users' connections and the channel's subscribers are
// as many, fewer and more (the fan-out walks whichever index is smaller),
// and with more than 8 users; each reaches only the subscribed connections
// of its users.
func TestIsolationAcrossUsersWithSameConnectionsCount(t *testing.T) {
	rs := redistest.Start(t)
	reps := []*replica{serveInProcess(t, prodEnv(rs.URL())).asReplica(t)}
	all := []string{"c.*"}
	// On the one replica: a and b have 2 connections each on c.x (4
	// subscribers), c has 2 on c.y (2 subscribers), d has 2 on none.
	specs := []isoConnSpec{
		{user: "a", claims: all, request: []string{"c.x"}},
		{user: "a", claims: all, request: []string{"c.x"}},
		{user: "b", claims: all, request: []string{"c.x"}},
		{user: "b", claims: all, ops: []isoOp{{"subscribe", "c.x", "1"}}},
		{user: "c", claims: all, request: []string{"c.y"}},
		{user: "c", claims: all, request: []string{"c.y"}},
		{user: "d", claims: all},
		{user: "d", claims: all, request: []string{"c.x"}, ops: []isoOp{{"unsubscribe", "c.x", "1"}}},
	}
	var st isoSetup
	conns := make([]*isoConn, len(specs))
	for i, sp := range specs {
		conns[i] = isoOpen(t, reps, i, sp, &st)
	}
	ghosts := func(n int) []string {
		var us []string
		for i := range n {
			us = append(us, fmt.Sprintf("g%d", i))
		}
		return us
	}
	n := 0
	ev := func(channel string, users ...string) isoRequest {
		n++
		return isoRequest{evs: []*isoEvent{{id: fmt.Sprintf("s-%02d", n), typ: "iso.same", users: users, channel: channel, seq: n}}}
	}
	reqs := []isoRequest{
		ev("c.x", "a"),                // 2 user connections < 4 subscribers
		ev("c.x", "a", "b"),           // 4 = 4
		ev("c.x", "a", "c"),           // 4 = 4, c not subscribed
		ev("c.x", "c", "d"),           // 4 = 4, neither subscribed
		ev("c.x", "a", "c", "d"),      // 6 > 4
		ev("c.y", "c"),                // 2 = 2
		ev("c.y", "a"),                // 2 = 2, a not subscribed
		ev("c.y", "d"),                // 2 = 2, d not subscribed
		ev("c.y", "a", "b", "c", "d"), // 8 > 2
		ev("c.x", append(ghosts(9), "b")...),
		ev("c.y", append(ghosts(9), "a", "d")...),
		ev("c.x"),
		ev("c.y"),
		ev("", "d"),
		ev("", append(ghosts(9), "c")...),
	}
	tt := isoRun(t, reps, conns, [][]isoRequest{reqs}, []string{"a", "b", "c", "d"})
	t.Logf("same connection counts: %v", tt)
}
