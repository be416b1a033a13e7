package subscribers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/metric"

	"github.com/hookwire/hookwire/auth"
	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/internal/drain"
	"github.com/hookwire/hookwire/problem"
)

// hub is what a connection needs of the bridge.
type hub interface {
	Subscribe(ctx context.Context, req bridge.SubscribeRequest) (*bridge.Subscription, error)
}

// verifier checks subscriber tokens. auth.Verifier implements it.
type verifier interface {
	VerifyContext(ctx context.Context, token string) (auth.Claims, error)
	// RefreshContext verifies a new token for the same subject.
	RefreshContext(ctx context.Context, current auth.Claims, token string) (auth.Claims, error)
}

// Options configure a Server. Zero values mean the defaults.
type Options struct {
	Logger *slog.Logger
	// AllowedOrigins are the browser origins allowed to connect: exact
	// origins, "https://*.example.com" for subdomains, or "*" for any.
	// Requests without Origin (servers, CLIs) are always allowed.
	AllowedOrigins []string
	PingInterval   time.Duration // default 25s
	MaxChannels    int           // channels per connection, default 100
	// MaxConnsPerUser bounds one user's open connections on this replica
	// (default 32); past it an upgrade gets 429.
	MaxConnsPerUser int
	// FrameRate and FrameBurst bound the frames a client may send per
	// second (default 20, bursts of 40). Past them a frame gets a
	// rate_limited error; a client that keeps going is closed (1008).
	FrameRate  float64
	FrameBurst int
	// Head returns the newest cursor of the broker, so a fresh connection
	// learns a position to resume from before it receives any event.
	Head func(ctx context.Context) (bridge.Cursor, error)
	// MeterProvider receives the connection metrics; nil means none.
	MeterProvider metric.MeterProvider
	// Drain is the replica's draining state, owned by its main: from the
	// instant it begins, upgrades get 503 and a connection that was
	// upgrading is closed with 1001. Nil means a State of the Server's
	// own, begun by Drain.
	Drain *drain.State
	// Tailing, when set, is closed once the replica reads the stream
	// (bridge.Hub.Tailing). Until then an upgrade waits for it, up to
	// tailingWait, and then gets 503: a connection welcomed before the
	// replica reads the stream could miss the events in between.
	Tailing <-chan struct{}
}

// tailingWait bounds how long an upgrade waits for a starting replica to
// read its stream.
const tailingWait = 5 * time.Second

// Server serves GET /v1/ws. It is safe for concurrent use.
type Server struct {
	hub      hub
	verifier verifier
	opts     Options
	metrics  *instruments
	logger   *slog.Logger
	upgrader websocket.Upgrader

	drain   *drain.State
	poller  *poller        // parks idle connections' readers; nil where there is no epoll
	wg      sync.WaitGroup // the connections, from serve to finish; Drain waits for them
	mu      sync.Mutex     // guards conns, perUser
	conns   map[*conn]struct{}
	perUser map[string]int // open (or upgrading) connections by user

	// gorillaControl leaves pings and pongs to gorilla (readControl): the
	// fuzzer's reference behaviour.
	gorillaControl bool
}

// New returns a Server that registers connections with h and checks tokens
// with v.
func New(h hub, v verifier, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.MaxChannels <= 0 {
		opts.MaxChannels = 100
	}
	if opts.MaxConnsPerUser <= 0 {
		opts.MaxConnsPerUser = 32
	}
	if opts.FrameRate <= 0 {
		opts.FrameRate = 20
	}
	if opts.FrameBurst <= 0 {
		opts.FrameBurst = 2 * int(math.Ceil(opts.FrameRate))
	}
	if opts.Drain == nil {
		opts.Drain = new(drain.State)
	}
	s := &Server{hub: h, verifier: v, opts: opts, metrics: newInstruments(opts.MeterProvider), logger: opts.Logger, drain: opts.Drain, poller: newPoller(), conns: make(map[*conn]struct{}), perUser: make(map[string]int)}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// No read buffer of gorilla's own: it reuses the small reader
		// the hijacker hands it instead of the server's 4 KiB one
		// (readBufferSize, wire.go). hookwire writes its frames itself
		// (wire.go); the pool keeps gorilla from holding a write buffer
		// per connection.
		ReadBufferSize:  0,
		WriteBufferPool: &sync.Pool{},
		// The Origin was checked before Upgrade is called.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeProblem(w, r, status, reason.Error())
		},
	}
	return s
}

// Close stops the goroutine that watches idle connections (their sockets'
// poller) and waits for it. Call it once the connections are closed, after
// Drain: a connection still idle then is not woken by its client's frames
// any more, only by its ping timer.
func (s *Server) Close() {
	if s.poller != nil {
		s.poller.close()
	}
}

// Count returns the number of open connections.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ServeHTTP checks the request and upgrades it. Every check runs before
// the upgrade, so a rejected client gets a plain HTTP answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.drain.Draining() {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "this node is draining; connect to another")
		return
	}
	if !s.tailing(r.Context()) {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "this node is starting: it does not read the stream yet; retry")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		writeProblem(w, r, http.StatusUpgradeRequired, "this endpoint speaks WebSocket only")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(s.opts.AllowedOrigins, origin) {
		s.metrics.authFailure("origin")
		writeProblem(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	tok, ok := token(r)
	if !ok {
		writeProblem(w, r, http.StatusBadRequest, "token given both in the query and in Authorization; send one")
		return
	}
	claims, err := s.verifier.VerifyContext(r.Context(), tok)
	if err != nil {
		s.metrics.authFailure("token")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeProblem(w, r, http.StatusUnauthorized, err.Error())
		return
	}
	q := r.URL.Query()
	since, err := bridge.ParseCursor(q.Get("since"))
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "malformed since cursor")
		return
	}
	channels, err := s.parseChannels(claims, q.Get("channels"))
	if err != nil {
		status := http.StatusBadRequest
		var ef *clientError
		if errors.As(err, &ef) && ef.code == codeForbidden {
			status = http.StatusForbidden
			s.metrics.authFailure("channel")
		}
		writeProblem(w, r, status, err.(*clientError).msg)
		return
	}
	cloudEvents, err := parseFormat(q.Get("format"))
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !s.reserve(claims.Subject) {
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf("at most %d connections per user", s.opts.MaxConnsPerUser))
		return
	}
	wr := &hijacker{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(wr, r, nil)
	if err != nil {
		s.release(claims.Subject)
		return // Upgrade answered the client.
	}
	s.serve(r.Context(), upgraded{ // releases the user's place when it ends
		ws: ws, wire: wr.wire, claims: claims, channels: channels, since: since, cloudEvents: cloudEvents,
	})
}

// tailing reports whether the replica reads the stream, waiting for a
// starting one up to tailingWait.
func (s *Server) tailing(ctx context.Context) bool {
	if s.opts.Tailing == nil {
		return true
	}
	select {
	case <-s.opts.Tailing:
		return true
	default:
	}
	t := time.NewTimer(tailingWait)
	defer t.Stop()
	select {
	case <-s.opts.Tailing:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// reserve counts one more connection for user, unless it has too many.
func (s *Server) reserve(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[user] >= s.opts.MaxConnsPerUser {
		return false
	}
	s.perUser[user]++
	return true
}

func (s *Server) release(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[user]--; s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
}

// token returns the request's token, from ?token= or Authorization:
// Bearer. ok is false when both carry one: which to believe is ambiguous.
func token(r *http.Request) (tok string, ok bool) {
	q := r.URL.Query().Get("token")
	h, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	h = strings.TrimSpace(h)
	switch {
	case q != "" && bearer && h != "":
		return "", false
	case q != "":
		return q, true
	case bearer:
		return h, true
	}
	return "", true
}

func (s *Server) parseChannels(claims auth.Claims, list string) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	parts := strings.Split(list, ",")
	if len(parts) > s.opts.MaxChannels {
		return nil, &clientError{codeLimit, fmt.Sprintf("at most %d channels per connection", s.opts.MaxChannels)}
	}
	for _, ch := range parts {
		if err := s.checkChannel(claims, ch); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// checkChannel reports whether claims may subscribe to ch.
func (s *Server) checkChannel(claims auth.Claims, ch string) error {
	if !bridge.ValidChannel(ch) {
		return &clientError{codeBadRequest, "invalid channel name"}
	}
	if !claims.ChannelAllowed(ch) {
		return &clientError{codeForbidden, "token does not grant channel " + ch}
	}
	return nil
}

// dnsLabels reports whether s is one or more non-empty DNS labels
// (letters, digits, hyphens) joined by dots: the part a wildcard origin
// stands for. Nothing else a browser never sends (a userinfo "@", a "?",
// a "#", a "/", an empty label) can pass for a subdomain.
func dnsLabels(s string) bool {
	if s == "" {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func originAllowed(allowed []string, origin string) bool {
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
		// "https://*.example.com" allows any subdomain, not the apex.
		if scheme, host, ok := strings.Cut(a, "://*."); ok {
			prefix := scheme + "://"
			if o, ok := strings.CutPrefix(strings.ToLower(origin), strings.ToLower(prefix)); ok {
				if sub, ok := strings.CutSuffix(o, "."+strings.ToLower(host)); ok && dnsLabels(sub) {
					return true
				}
			}
		}
	}
	return false
}

func writeProblem(w http.ResponseWriter, _ *http.Request, status int, detail string) {
	p := problem.ForStatus(status, detail)
	p.RequestID = w.Header().Get("X-Request-Id")
	problem.Write(w, p)
}

// upgraded is one connection ServeHTTP checked and upgraded.
type upgraded struct {
	ws          *websocket.Conn
	wire        *wire
	claims      auth.Claims
	channels    []string      // to subscribe to at once
	since       bridge.Cursor // zero: from the broker's head
	cloudEvents bool          // format=cloudevents
}

// serve starts one upgraded connection and returns: the connection runs on
// its reader goroutine, so the HTTP handler's deep stack is not kept for
// the connection's life.
func (s *Server) serve(ctx context.Context, u upgraded) {
	channels, since := u.channels, u.since
	c := &conn{
		ws: u.ws, wire: u.wire, id: rand.Text()[:12], claims: u.claims, srv: s,
		user: u.claims.Subject, cloudEvents: u.cloudEvents,
	}
	c.wr = newWriter(u.wire, c)
	u.wire.pl = s.poller
	// A reader for a parked connection is a goroutine of its own, as
	// the first one is; the connection's context is not the request's
	// (below).
	u.wire.resume = func() { go s.run(context.Background(), c, nil) }
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if s.drain.Draining() {
		// The drain began while this one was upgrading: Drain's
		// snapshot may not include it.
		c.close(websocket.CloseGoingAway, "server draining, reconnect with since", flushQueued)
	}
	// The log line and the timers are set up here, on the handler's
	// goroutine: what the reader goroutine runs before it blocks sets the
	// size of a stack it keeps for the connection's life (8 KiB with the
	// log line, 2 KiB without).
	c.log().Info("subscriber connected", "channels", len(channels), "resume", !since.IsZero())
	c.startTimers(s.opts.PingInterval)
	c.prepareRead(s.opts.PingInterval)
	// The subscription (the Head call, a replay) runs here too, on the
	// handler's goroutine, which ends when it is done: the reader
	// goroutine, which lives as long as the connection, starts with
	// nothing to do but wait for a client frame, so its stack stays at
	// its 2 KiB minimum (awaitFrame).
	sub, err := s.subscribe(ctx, c, channels, since)
	if err != nil {
		if !errors.Is(err, errClosing) {
			c.log().WarnContext(ctx, "replay failed", "err", err)
			c.fail("", err)
			c.close(websocket.CloseTryAgainLater, "history unavailable, try again", flushQueued)
		}
	} else {
		c.sub = sub
	}
	// Not the upgrade request's context for the reader: that one is done
	// once the handler returns, and keeping its values (the request's
	// span, say) for the connection's life would cost every idle
	// connection. The client ops the reader runs (a replay on subscribe,
	// a refresh) run on the reader itself and end with the connection:
	// nothing needs to cancel them, so it holds no cancelable context.
	if err == nil && c.wire.park() {
		return // idle from the start: no reader until the client sends
	}
	go s.run(context.Background(), c, err)
}

// run is a reader goroutine of the connection: it reads client frames
// until the connection ends (unless subscribing failed with err), then
// cleans up. When the client has nothing more to read it parks the
// connection and returns (wire.park; serve parks a new connection before
// its first frame): an idle connection keeps no goroutine, and the poller
// starts a new reader when the client sends.
// Where it cannot park it waits in awaitFrame, a few frames deep, so the
// stack it keeps stays at its 2 KiB minimum. Only one reader runs at a
// time.
func (s *Server) run(ctx context.Context, c *conn, err error) {
	for err == nil {
		c.wire.awaitFrame()
		var handled bool
		if handled, err = c.readControl(); !handled && err == nil {
			err = c.readFrame(ctx)
		}
		if err == nil && c.wire.park() {
			return
		}
	}
	s.finish(ctx, c, err)
}

// finish ends a connection whose reader stopped with err.
func (s *Server) finish(ctx context.Context, c *conn, err error) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.release(c.claims.Subject)
		s.wg.Done()
	}()
	if c.sub != nil {
		c.sub.Close()
	}
	if c.wr.closing() {
		// We asked to close: no writer can start any more but the one
		// writing the close frame. Let it finish, then read until the
		// client answers, so that closing with unread data does not
		// reset the connection and lose the close frame on the way.
		c.wr.wait()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			awaitClose(c.ws, closeGrace)
		}
	}
	c.timers.stop()
	c.wr.discard(errClosing)
	c.wire.forget()
	c.ws.Close()
	c.wr.wait()
	c.log().InfoContext(ctx, "subscriber disconnected")
}

// subscribe registers c with the hub, replaying history when since is set;
// a fresh connection starts from the broker's head.
func (s *Server) subscribe(ctx context.Context, c *conn, channels []string, since bridge.Cursor) (*bridge.Subscription, error) {
	welcome := welcomeFrame{Type: "welcome", User: c.claims.Subject, Conn: c.id}
	if !since.IsZero() {
		s.metrics.resumes.Add(ctx, 1)
	}
	if since.IsZero() && s.opts.Head != nil {
		// A fresh connection starts from the head: replaying from it
		// covers the events read between the Head call and the
		// registration, and the client learns a cursor to resume from.
		// Not a child of ctx: a child would leave ctx holding a map of
		// children for the connection's life. The call is bounded anyway.
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		head, err := s.opts.Head(hctx)
		hcancel()
		if err == nil && !head.IsZero() {
			since = head
			welcome.Cursor = head.String()
		}
	}
	return s.hub.Subscribe(ctx, bridge.SubscribeRequest{
		Sink: c, User: c.claims.Subject, Channels: channels, Since: since,
		Registered: func() { c.reply(welcome) },
	})
}

// Drain begins the drain state (if its owner has not already) and closes
// every connection with 1001 (going away), spread over the time ctx
// leaves, so that clients do not all reconnect at once. Each connection's
// queued frames are written first. It returns when every connection is
// closed, or when ctx is done, after closing the rest at once.
func (s *Server) Drain(ctx context.Context) error {
	// Begin before the snapshot: a connection registered after it sees
	// the drain and closes itself (serve).
	s.drain.Begin()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var step time.Duration
	if dl, ok := ctx.Deadline(); ok && len(conns) > 0 {
		// Use half the budget to spread the closes; the rest is for
		// the last ones to flush and finish.
		step = time.Until(dl) / 2 / time.Duration(len(conns))
	}
	for i, c := range conns {
		c.close(websocket.CloseGoingAway, "server draining, reconnect with since", flushQueued)
		if step > 0 && i < len(conns)-1 {
			select {
			case <-time.After(step):
			case <-ctx.Done():
			}
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.ws.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// awaitClose reads and discards frames until the peer's close frame, an
// error, or grace passes. The reader goroutine must have stopped.
func awaitClose(ws *websocket.Conn, grace time.Duration) {
	_ = ws.SetReadDeadline(time.Now().Add(grace))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}
