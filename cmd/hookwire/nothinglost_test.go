package main

// The "nothing lost" suite: real replicas, real Redis, every event counted
// twice: as the raw frames each connection received from the server, and as
// what the client delivered after dropping repeats. Each test logs its
// totals (sent, accepted, expected, on the wire, after dedupe, duplicates
// on the wire, out of order, missing); run with -v to read them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/client"
	"github.com/hookwire/hookwire/internal/redistest"
)

const lossChannel = "prices.X"

// ledger records what the publisher sent and what was accepted.
type ledger struct {
	mu       sync.Mutex
	sent     int
	accepted []accepted // in accept order
	rejected map[int]int
}

type accepted struct {
	id    string
	user  string    // "" for a channel event
	start time.Time // when the first POST began
	at    time.Time // when the 202 arrived
}

func (l *ledger) snapshot() []accepted {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepted)
}

// publisher posts n events, one at a time, each to one of users or, every
// channelEvery-th, to lossChannel. It retries an event (same id) on 503
// and connection errors, so every event is eventually accepted or the run
// fails. bases returns the replicas to post to now.
func publish(ctx context.Context, t *testing.T, l *ledger, bases func() []string, users []string, n, channelEvery int, every time.Duration) {
	t.Helper()
	publishPadded(ctx, t, l, bases, users, n, channelEvery, every, "", 0)
}

// publishPadded is publish with data padded to make events large, and ids
// prefixed so several runs can share a ledger.
func publishPadded(ctx context.Context, t *testing.T, l *ledger, bases func() []string, users []string, n, channelEvery int, every time.Duration, prefix string, pad int) {
	t.Helper()
	padding := strings.Repeat("x", pad)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range n {
		id := fmt.Sprintf("%se%06d", prefix, i)
		user, body := users[i%len(users)], ""
		if channelEvery > 0 && i%channelEvery == channelEvery-1 {
			user = ""
			body = fmt.Sprintf(`{"id":%q,"type":"price","channel":%q,"data":{"n":%d,"pad":%q}}`, id, lossChannel, i, padding)
		} else {
			body = fmt.Sprintf(`{"id":%q,"type":"balance.updated","users":[%q],"data":{"n":%d,"pad":%q}}`, id, user, i, padding)
		}
		start := time.Now()
		l.mu.Lock()
		l.sent++
		l.mu.Unlock()
		deadline := time.Now().Add(30 * time.Second)
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil || time.Now().After(deadline) {
				t.Errorf("event %s never accepted", id)
				return
			}
			bs := bases()
			status := post(ctx, bs[(i+attempt)%len(bs)], body)
			if status == http.StatusAccepted || status == http.StatusOK {
				l.mu.Lock()
				l.accepted = append(l.accepted, accepted{id: id, user: user, start: start, at: time.Now()})
				l.mu.Unlock()
				break
			}
			l.mu.Lock()
			if l.rejected == nil {
				l.rejected = map[int]int{}
			}
			l.rejected[status]++
			l.mu.Unlock()
			if status != http.StatusServiceUnavailable && status != 0 {
				t.Errorf("event %s: status %d", id, status)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// post returns the status, or 0 when the request failed.
func post(ctx context.Context, base, body string) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// counter is one subscriber using the client package.
type counter struct {
	user string
	mu   sync.Mutex
	// wire is the event ids of the raw frames each connection received,
	// one slice per connection, before the client dropped repeats.
	wire [][]string
	got  []string // what the client delivered
	// at is when each event arrived.
	at       map[string]time.Time
	resets   []time.Time
	closes   map[int]int
	connects int
}

func (c *counter) onEvent(ev client.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, ev.ID)
	if c.at == nil {
		c.at = map[string]time.Time{}
	}
	c.at[ev.ID] = time.Now()
}

// onFrame counts a raw frame of the current connection.
func (c *counter) onFrame(b []byte) {
	var f struct{ Type, ID string }
	if json.Unmarshal(b, &f) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f.Type {
	case "welcome":
		c.wire = append(c.wire, nil)
	case "event":
		if n := len(c.wire); n > 0 {
			c.wire[n-1] = append(c.wire[n-1], f.ID)
		}
	}
}

func (c *counter) onReset(string) {
	c.mu.Lock()
	c.resets = append(c.resets, time.Now())
	c.mu.Unlock()
}

func (c *counter) onDisconnect(err error) {
	var ce *websocket.CloseError
	code := 1006
	if errors.As(err, &ce) {
		code = ce.Code
	}
	c.mu.Lock()
	if c.closes == nil {
		c.closes = map[int]int{}
	}
	c.closes[code]++
	c.mu.Unlock()
}

// startCounters connects n subscribers, spread over users and, with spread
// set, over the replicas (each starts at a different one); all rotate
// through bases on reconnect.
func startCounters(ctx context.Context, t *testing.T, wg *sync.WaitGroup, n int, users, bases []string, spread bool) []*counter {
	t.Helper()
	cs := make([]*counter, n)
	var welcomed sync.WaitGroup
	for i := range n {
		c := &counter{user: users[i%len(users)]}
		cs[i] = c
		urls := bases
		if spread {
			urls = append(slices.Clone(bases[i%len(bases):]), bases[:i%len(bases)]...)
		}
		tok := subToken(t, c.user, "prices.*")
		var once sync.Once
		welcomed.Add(1)
		cl := client.New(client.Options{
			URLs: urls, Token: tok, Channels: []string{lossChannel},
			OnEvent: c.onEvent, OnReset: c.onReset, OnDisconnect: c.onDisconnect, OnFrame: c.onFrame,
			OnConnect: func(string) {
				c.mu.Lock()
				c.connects++
				c.mu.Unlock()
				once.Do(welcomed.Done)
			},
			BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		})
		wg.Go(func() { cl.Run(ctx) })
	}
	done := make(chan struct{})
	go func() { welcomed.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("subscribers did not all connect")
	}
	return cs
}

// expected returns the ids c must receive, in order.
func (c *counter) expected(acc []accepted) []string {
	var ids []string
	for _, a := range acc {
		if a.user == "" || a.user == c.user {
			ids = append(ids, a.id)
		}
	}
	return ids
}

// totals are what check counted over every counter.
type totals struct {
	sent, accepted int
	expected       int // deliveries the ledger entitles the counters to
	wire           int // event frames the server sent
	delivered      int // events the clients delivered, after dedupe
	wireDuplicates int // event frames repeating an id the same counter already had on the wire
	duplicated     int // repeats the client delivered
	outOfOrder     int // counters whose deliveries are not in publish order
	missing        int // expected, not delivered, not excused
	extra          int // delivered, not expected
	excused        int // expected, not delivered, excused
	resets         int
}

func (tt totals) String() string {
	return fmt.Sprintf("sent=%d accepted=%d expected=%d on_the_wire=%d after_dedupe=%d wire_duplicates=%d duplicated=%d out_of_order=%d missing=%d extra=%d excused=%d resets=%d",
		tt.sent, tt.accepted, tt.expected, tt.wire, tt.delivered, tt.wireDuplicates, tt.duplicated, tt.outOfOrder, tt.missing, tt.extra, tt.excused, tt.resets)
}

// exact reports whether the counters got exactly what they were entitled
// to: every accepted event, once on the wire and once delivered, in order.
func (tt totals) exact() bool {
	return tt.accepted == tt.sent && tt.missing == 0 && tt.extra == 0 && tt.excused == 0 &&
		tt.wireDuplicates == 0 && tt.duplicated == 0 && tt.outOfOrder == 0 &&
		tt.delivered == tt.expected && tt.wire == tt.expected
}

// check compares every counter with the ledger: it waits up to wait for
// stragglers (until nothing is missing), then a further moment for extras
// (frames that should not come), and counts. excuse, when not nil, may let
// an expected event be missing.
func check(l *ledger, cs []*counter, wait time.Duration, excuse func(c *counter, id string) bool) totals {
	deadline := time.Now().Add(wait)
	for {
		tt := count(l, cs, excuse)
		if tt.missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	return count(l, cs, excuse)
}

func count(l *ledger, cs []*counter, excuse func(c *counter, id string) bool) totals {
	var tt totals
	l.mu.Lock()
	tt.sent, tt.accepted = l.sent, len(l.accepted)
	acc := slices.Clone(l.accepted)
	l.mu.Unlock()
	for _, c := range cs {
		want := c.expected(acc)
		c.mu.Lock()
		got := slices.Clone(c.got)
		onWire := map[string]bool{}
		for _, conn := range c.wire {
			tt.wire += len(conn)
			for _, id := range conn {
				if onWire[id] {
					tt.wireDuplicates++
				}
				onWire[id] = true
			}
		}
		tt.resets += len(c.resets)
		c.mu.Unlock()
		tt.expected += len(want)
		tt.delivered += len(got)
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
		}
		for _, n := range seen {
			tt.duplicated += n - 1
		}
		wanted := map[string]bool{}
		for _, id := range want {
			wanted[id] = true
			switch {
			case seen[id] > 0:
			case excuse != nil && excuse(c, id):
				tt.excused++
			default:
				tt.missing++
			}
		}
		for id := range seen {
			if !wanted[id] {
				tt.extra++
			}
		}
		// Ids are published in increasing order by one publisher.
		if !sort.StringsAreSorted(got) {
			tt.outOfOrder++
		}
	}
	return tt
}

func users(n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = fmt.Sprintf("u%03d", i)
	}
	return u
}

// killRun is a run of three replicas, subscribers spread over them and a
// steady publish stream, in which the second replica is SIGKILLed midway.
type killRun struct {
	redisURLs   [3]string // the broker URL of each replica
	subscribers int
	users       int
	events      int           // posted by 5 publishers, to random users
	gap         time.Duration // between a publisher's posts
	killAfter   time.Duration // from the first post to the kill
}

// run starts the replicas, the counters and the publishers, kills the
// second replica after killAfter (publishers then post to the other two
// only) and returns once every event is posted. The counters run until
// the test ends.
func (k killRun) run(t *testing.T) (*ledger, []*counter) {
	t.Helper()
	var reps []*replica
	var bases []string
	for _, u := range k.redisURLs {
		r := startReplica(t, prodEnv(u)) // a process: the test SIGKILLs it
		reps = append(reps, r)
		bases = append(bases, r.base)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	us := users(k.users)
	cs := startCounters(ctx, t, &wg, k.subscribers, us, bases, true)
	var killed atomic.Bool
	alive := func() []string {
		if killed.Load() {
			return []string{bases[0], bases[2]}
		}
		return bases
	}
	l := &ledger{}
	pubDone := make(chan struct{})
	go func() { publish(ctx, t, l, alive, us, k.events, 5, k.gap); close(pubDone) }()
	time.Sleep(k.killAfter)
	reps[1].signal(syscall.SIGKILL)
	killed.Store(true)
	<-pubDone
	return l, cs
}

// TestNothingLostWhenAReplicaDies: three replicas, 200 subscribers, a
// steady publish stream; one replica is SIGKILLed midway. Every accepted
// event reaches every matching subscriber exactly once, in order.
func TestNothingLostWhenAReplicaDies(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	rs := redistest.Start(t)
	l, cs := killRun{
		redisURLs:   [3]string{rs.URL(), rs.URL(), rs.URL()},
		subscribers: 200, users: 50, events: 600, gap: 5 * time.Millisecond, killAfter: 1500 * time.Millisecond,
	}.run(t)
	tt := check(l, cs, 30*time.Second, nil)
	t.Logf("replica killed: %v", tt)
	if !tt.exact() || tt.resets != 0 {
		t.Errorf("lost or repeated events: %v", tt)
	}
	reconnected := 0
	for _, c := range cs {
		c.mu.Lock()
		if c.connects > 1 {
			reconnected++
		}
		c.mu.Unlock()
	}
	t.Logf("subscribers that reconnected: %d of %d", reconnected, len(cs))
	if reconnected == 0 {
		t.Error("no subscriber was on the killed replica")
	}
}

// redisOutage runs two replicas on a Redis started with opts, 40
// subscribers and a publisher of 300 events; one second in, Redis is
// SIGKILLed for three seconds (longer than a request waits for it) and
// restarted on the same port. It returns when the publisher is done, with
// what each counter had received when Redis was killed, and when.
func redisOutage(ctx context.Context, t *testing.T, wg *sync.WaitGroup, opts ...redistest.Option) (*ledger, []*counter, *outage) {
	t.Helper()
	rs := redistest.Start(t, opts...)
	a := startReplica(t, prodEnv(rs.URL()))
	b := startReplica(t, prodEnv(rs.URL()))
	bases := []string{a.base, b.base}
	us := users(10)
	cs := startCounters(ctx, t, wg, 40, us, bases, true)
	l := &ledger{}
	pubDone := make(chan struct{})
	go func() {
		publish(ctx, t, l, func() []string { return bases }, us, 300, 4, 10*time.Millisecond)
		close(pubDone)
	}()
	time.Sleep(1 * time.Second)
	rs.Kill()
	o := &outage{at: time.Now(), had: map[*counter]map[string]bool{}}
	for _, c := range cs {
		c.mu.Lock()
		o.had[c] = map[string]bool{}
		for _, id := range c.got {
			o.had[c][id] = true
		}
		c.mu.Unlock()
	}
	time.Sleep(3 * time.Second)
	rs.Restart()
	<-pubDone
	return l, cs, o
}

// outage is when Redis died and what each counter had received by then.
type outage struct {
	at  time.Time
	had map[*counter]map[string]bool
}

// TestNothingLostWhenRedisRestarts: Redis with appendonly yes and
// appendfsync always is SIGKILLed and restarted on the same port under
// load; publishers retry on 503, every accepted event is delivered.
func TestNothingLostWhenRedisRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	l, cs, _ := redisOutage(ctx, t, &wg, redistest.WithAppendOnly())
	tt := check(l, cs, 30*time.Second, nil)
	l.mu.Lock()
	t.Logf("redis restarted with AOF: %v rejected_attempts=%v", tt, l.rejected)
	l.mu.Unlock()
	if !tt.exact() || tt.resets != 0 {
		t.Errorf("lost or repeated events: %v", tt)
	}
	if l.rejected[http.StatusServiceUnavailable]+l.rejected[0] == 0 {
		t.Error("no publish was refused while Redis was down: the outage was not exercised")
	}
}

// TestResetWhenRedisLosesItsData: the same without persistence: Redis
// comes back empty, so events may be lost, but never silently: every
// subscriber gets a reset, and misses nothing accepted after it.
func TestResetWhenRedisLosesItsData(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	l, cs, o := redisOutage(ctx, t, &wg)
	// An event may be missing only if Redis took it down with it: it was
	// accepted before the kill, the subscriber had not received it by then
	// (and had received nothing published after it: an older gap is a
	// silent loss), and the subscriber was told with a reset.
	acc := l.snapshot()
	order := map[string]int{}
	for i, a := range acc {
		order[a.id] = i
	}
	tt := check(l, cs, 30*time.Second, func(c *counter, id string) bool {
		i, ok := order[id]
		if !ok || !acc[i].at.Before(o.at) || o.had[c][id] {
			return false
		}
		for later := range o.had[c] {
			if order[later] > i {
				return false
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.resets) > 0
	})
	t.Logf("redis restarted empty: %v", tt)
	if tt.accepted != tt.sent || tt.missing != 0 || tt.extra != 0 || tt.duplicated != 0 || tt.wireDuplicates != 0 || tt.outOfOrder != 0 {
		t.Errorf("silent gap: %v", tt)
	}
	for i, c := range cs {
		c.mu.Lock()
		n := len(c.resets)
		c.mu.Unlock()
		if n == 0 {
			t.Errorf("subscriber %d (%s) got no reset", i, c.user)
		}
	}
}

// TestNothingLostOnDrain: a replica drained with SIGTERM closes its
// sockets with 1001; its clients resume on the other replica and miss
// nothing.
func TestNothingLostOnDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	rs := redistest.Start(t)
	a := startReplica(t, prodEnv(rs.URL()))
	b := startReplica(t, prodEnv(rs.URL()))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	us := users(10)
	// Every subscriber starts on A; B is where they go next.
	cs := startCounters(ctx, t, &wg, 40, us, []string{a.base, b.base}, false)
	l := &ledger{}
	pubDone := make(chan struct{})
	go func() {
		publish(ctx, t, l, func() []string { return []string{b.base} }, us, 300, 4, 10*time.Millisecond)
		close(pubDone)
	}()
	time.Sleep(1 * time.Second)
	a.signal(syscall.SIGTERM)
	<-pubDone
	tt := check(l, cs, 30*time.Second, nil)
	t.Logf("replica drained: %v", tt)
	if !tt.exact() {
		t.Errorf("lost or repeated events: %v", tt)
	}
	goingAway := 0
	for _, c := range cs {
		c.mu.Lock()
		goingAway += c.closes[websocket.CloseGoingAway]
		c.mu.Unlock()
	}
	t.Logf("subscribers closed with 1001: %d", goingAway)
	if goingAway == 0 {
		t.Error("no subscriber saw close 1001")
	}
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		t.Error("drained replica did not exit")
	}
}

// latencies returns the delivery latencies (first POST to arrival) of the
// accepted events whose id has prefix, over every counter.
func latencies(l *ledger, cs []*counter, prefix string) []time.Duration {
	var ds []time.Duration
	for _, a := range l.snapshot() {
		if !strings.HasPrefix(a.id, prefix) {
			continue
		}
		for _, c := range cs {
			c.mu.Lock()
			if at, ok := c.at[a.id]; ok {
				ds = append(ds, at.Sub(a.start))
			}
			c.mu.Unlock()
		}
	}
	slices.Sort(ds)
	return ds
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(float64(len(ds))*q))]
}

// TestSlowConsumerDoesNotSlowOthers: a subscriber that stops reading is
// closed with 1013 when its queue overflows; the others' delivery latency
// stays what it was without it, and they miss nothing.
func TestSlowConsumerDoesNotSlowOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	rs := redistest.Start(t)
	// Default ping interval: no pings during the run.
	r := startReplica(t, prodEnv(rs.URL())[:3])
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	us := users(10)
	cs := startCounters(ctx, t, &wg, 4, us, []string{r.base}, false)
	l := &ledger{}
	// Every event goes to the channel, so every subscriber gets it.
	publishBatches(t, l, r.base, "a", 2, 300, 12<<10)
	check(l, cs, 30*time.Second, nil)
	before := latencies(l, cs, "a")

	// The slow one reads nothing: its socket buffers fill, then its queue,
	// which overflows (1013) at the next batch. It reads again, at full
	// speed, the moment the server counts the close: the write its full
	// socket blocked fails after 10 s without progress (and the close frame
	// is lost with it), so the gap between the socket filling and the read
	// must stay well under 10 s, however long the batches take on a loaded
	// machine. (Reading a little does not keep that write going: the kernel
	// wakes a writer only once a third of its send buffer, megabytes, is free.)
	u := "ws" + strings.TrimPrefix(r.base, "http") + "/v1/ws?token=" + subToken(t, "slowpoke", "prices.*") + "&channels=" + lossChannel
	// A small receive buffer set before connecting keeps the TCP window,
	// and so what the kernels buffer for it, small.
	nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	d := &websocket.Dialer{NetDialContext: nd.DialContext}
	sws, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sws.Close()
	var closed atomic.Bool
	slowEnd := make(chan error, 1)
	go func() {
		// Watch the server's count of slow-consumer closes, then read:
		// what was written before the close, then the close frame.
		for ctx.Err() == nil && slowClosesNow(r.base) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		closed.Store(true)
		sws.SetReadDeadline(time.Now().Add(time.Minute))
		var err error
		for err == nil {
			_, _, err = sws.ReadMessage()
		}
		slowEnd <- err
	}()
	batches := 0
	// 300 events a batch: more than its queue (256) in one go.
	for ; batches < 10 && !closed.Load(); batches++ {
		publishBatches(t, l, r.base, fmt.Sprintf("b%02d", batches), 1, 300, 12<<10)
	}
	if slowCloses(t, r) == 0 {
		t.Fatalf("no slow-consumer close after %d batches", batches)
	}
	tt := check(l, cs, 30*time.Second, nil)
	after := latencies(l, cs, "b")
	_ = after
	t.Logf("slow consumer: %v", tt)
	t.Logf("others' latency without the slow consumer: p50=%v p99=%v max=%v (%d deliveries)", quantile(before, .5), quantile(before, .99), quantile(before, 1), len(before))
	t.Logf("others' latency with the slow consumer:    p50=%v p99=%v max=%v (%d deliveries)", quantile(after, .5), quantile(after, .99), quantile(after, 1), len(after))
	if !tt.exact() {
		t.Errorf("the others lost or repeated events: %v", tt)
	}
	for i, c := range cs {
		c.mu.Lock()
		if c.connects != 1 {
			t.Errorf("subscriber %d reconnected (%v): the slow one affected it", i, c.closes)
		}
		c.mu.Unlock()
	}
	if p99a, p99b := quantile(after, .99), quantile(before, .99); p99a > 3*p99b+100*time.Millisecond {
		t.Errorf("p99 latency rose from %v to %v with a slow consumer", p99b, p99a)
	}
	// The slow one was closed with 1013 (try again later).
	err = <-slowEnd
	t.Logf("slow consumer closed after %d batches: %v", batches, err)
	if !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Errorf("slow consumer ended with %v, want close 1013", err)
	}
}

// slowClosesNow is slowCloses for any goroutine: 0 when /metrics cannot be
// read.
func slowClosesNow(base string) int {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "hookwire_slow_consumer_closes_total "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// slowCloses reads hookwire_slow_consumer_closes_total from r's /metrics.
func slowCloses(t *testing.T, r *replica) int {
	t.Helper()
	for _, line := range strings.Split(scrape(t, r.base), "\n") {
		if v, ok := strings.CutPrefix(line, "hookwire_slow_consumer_closes_total "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// publishBatches posts n batches of size channel events through the batch
// endpoint, one every 100ms.
func publishBatches(t *testing.T, l *ledger, base, prefix string, n, size, pad int) {
	t.Helper()
	padding := strings.Repeat("x", pad)
	for b := range n {
		var evs []string
		var ids []string
		for i := range size {
			id := fmt.Sprintf("%se%06d", prefix, b*size+i)
			ids = append(ids, id)
			evs = append(evs, fmt.Sprintf(`{"id":%q,"type":"price","channel":%q,"data":{"pad":%q}}`, id, lossChannel, padding))
		}
		body := `{"events":[` + strings.Join(evs, ",") + `]}`
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/events/batch", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Results []struct {
				Status int    `json:"status"`
				ID     string `json:"id"`
			} `json:"results"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || derr != nil || len(res.Results) != size {
			t.Errorf("batch %s%d: %d, %d results (%v), want 200 with %d", prefix, b, resp.StatusCode, len(res.Results), derr, size)
		}
		l.mu.Lock()
		l.sent += size
		for i, r := range res.Results {
			if r.Status != http.StatusAccepted || r.ID != ids[i] {
				t.Errorf("batch %s%d event %d: %d %q, want 202 %q", prefix, b, i, r.Status, r.ID, ids[i])
				continue
			}
			l.accepted = append(l.accepted, accepted{id: r.ID, start: start, at: time.Now()})
		}
		l.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}
