package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hookwire/hookwire/auth"
)

// ConnFigures describe one set of WebSocket connections.
type ConnFigures struct {
	ConnsEstablished int64             `json:"conns_established"`
	ConnsFailed      int64             `json:"conns_failed"`
	ConnFailures     map[string]int    `json:"conn_failures,omitempty"`
	FailureSamples   map[string]string `json:"conn_failure_samples,omitempty"`
	ConnsDropped     int64             `json:"conns_dropped"` // closed by the server or the network before the end
	ConnDrops        map[string]int    `json:"conn_drops,omitempty"`
	OpenS            float64           `json:"open_s"`
	OpenRate         float64           `json:"open_rate_achieved"`
}

// pool is a set of authenticated WebSocket connections, one reader
// goroutine each.
type pool struct {
	b        *bench
	name     string
	n        int
	user     func(i int) string
	channels []string // token claim
	query    string   // extra query, e.g. channels=bench.broadcast
	// onFrame sees every text frame after welcome. The slice is only
	// valid during the call. nil: frames are discarded unread.
	onFrame func(i int, frame []byte)

	dialer  *websocket.Dialer
	expiry  time.Time
	conns   []*websocket.Conn // set before the reader starts
	alive   []atomic.Bool
	est     atomic.Int64
	failed  atomic.Int64
	dropped atomic.Int64
	closing atomic.Bool
	readers sync.WaitGroup

	mu       sync.Mutex
	failures map[string]int
	samples  map[string]string
	drops    map[string]int
}

func (b *bench) newPool(name string, n int, user func(int) string, channels []string, query string, onFrame func(int, []byte)) *pool {
	return &pool{
		b: b, name: name, n: n, user: user, channels: channels, query: query, onFrame: onFrame,
		dialer: &websocket.Dialer{
			NetDialContext:   b.cfg.target.dial,
			Proxy:            nil,
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  256,
		},
		// Tokens outlive the run by far: an expiry close (1008) would be
		// a drop, not a finding.
		expiry:   time.Now().Add(maxDuration + time.Hour),
		conns:    make([]*websocket.Conn, n),
		alive:    make([]atomic.Bool, n),
		failures: map[string]int{},
		samples:  map[string]string{},
		drops:    map[string]int{},
	}
}

// open opens the n connections at cfg.openRate with cfg.openConc at once,
// each one complete when its welcome frame arrived. It gives up after
// failing a tenth of them (at least 100), or at its own deadline.
func (p *pool) open(ctx context.Context) time.Duration {
	cfg := p.b.cfg
	budget := time.Duration(float64(p.n)/cfg.openRate*float64(time.Second))*2 + 30*time.Second
	octx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	giveUp := int64(max(100, p.n/10))
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(cfg.openConc, p.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= p.n || p.failed.Load() >= giveUp {
					return
				}
				at := start.Add(time.Duration(float64(i) / cfg.openRate * float64(time.Second)))
				if !sleepUntil(octx, at) {
					return
				}
				p.dialOne(octx, i)
			}
		}()
	}
	wg.Wait()
	if p.failed.Load() >= giveUp {
		p.b.warn("%s: gave up opening connections after %d failures", p.name, p.failed.Load())
	} else if octx.Err() != nil && ctx.Err() == nil {
		p.b.warn("%s: opening connections took longer than %s; stopped", p.name, budget)
	}
	return time.Since(start)
}

func (p *pool) dialOne(ctx context.Context, i int) {
	tok, err := auth.Sign([]byte(p.b.cfg.jwtSecret), auth.Claims{Subject: p.user(i), Channels: p.channels, Expiry: p.expiry})
	if err != nil {
		p.fail("sign", err)
		return
	}
	u := p.b.cfg.target.wsURL
	if p.query != "" {
		u += "?" + p.query
	}
	ws, resp, err := p.dialer.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + tok}})
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		p.b.saw429.Store(true)
	}
	if err != nil {
		p.fail(classify(err, resp), err)
		return
	}
	// The first frame must be welcome: from then on the connection gets
	// every matching event.
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	mt, r, err := ws.NextReader()
	var first []byte
	bp := bufPool.Get().(*[]byte)
	if err == nil && mt == websocket.TextMessage {
		first, err = readAll(r, bp)
	}
	welcome := err == nil && bytes.HasPrefix(first, []byte(`{"type":"welcome"`))
	bufPool.Put(bp)
	if !welcome {
		ws.Close()
		if err == nil {
			err = fmt.Errorf("first frame is not welcome: %.100q", first)
		}
		p.fail("no_welcome", err)
		return
	}
	ws.SetReadDeadline(time.Time{})
	p.conns[i] = ws
	p.alive[i].Store(true)
	p.est.Add(1)
	p.readers.Add(1)
	go p.read(i, ws)
}

func (p *pool) fail(reason string, err error) {
	p.failed.Add(1)
	p.mu.Lock()
	p.failures[reason]++
	if _, ok := p.samples[reason]; !ok {
		p.samples[reason] = err.Error()
	}
	p.mu.Unlock()
}

// read is connection i's goroutine. It reads until the connection ends;
// the default ping handler answers the server's pings meanwhile.
func (p *pool) read(i int, ws *websocket.Conn) {
	defer p.readers.Done()
	for {
		mt, r, err := ws.NextReader()
		if err == nil && mt == websocket.TextMessage && p.onFrame != nil {
			bp := bufPool.Get().(*[]byte)
			var f []byte
			if f, err = readAll(r, bp); err == nil {
				p.onFrame(i, f)
			}
			bufPool.Put(bp)
		}
		if err != nil {
			p.alive[i].Store(false)
			if !p.closing.Load() {
				p.dropped.Add(1)
				p.mu.Lock()
				p.drops[dropReason(err)]++
				p.mu.Unlock()
			}
			return
		}
	}
}

// alives counts the connections still open.
func (p *pool) alives() int {
	n := 0
	for i := range p.alive {
		if p.alive[i].Load() {
			n++
		}
	}
	return n
}

// close ends every connection and waits for the readers.
func (p *pool) close() {
	p.closing.Store(true)
	for _, ws := range p.conns {
		if ws != nil {
			ws.Close()
		}
	}
	p.readers.Wait()
}

func (p *pool) figures(openTime time.Duration) ConnFigures {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := ConnFigures{
		ConnsEstablished: p.est.Load(),
		ConnsFailed:      p.failed.Load(),
		ConnsDropped:     p.dropped.Load(),
		OpenS:            round3(openTime.Seconds()),
	}
	if openTime > 0 {
		f.OpenRate = round3(float64(f.ConnsEstablished) / openTime.Seconds())
	}
	if len(p.failures) > 0 {
		f.ConnFailures, f.FailureSamples = p.failures, p.samples
	}
	if len(p.drops) > 0 {
		f.ConnDrops = p.drops
	}
	return f
}

func (p *pool) status() string {
	return fmt.Sprintf("%s: %d/%d open, %d failed, %d dropped", p.name, p.est.Load(), p.n, p.failed.Load(), p.dropped.Load())
}

func classify(err error, resp *http.Response) string {
	if resp != nil {
		return "http_" + strconv.Itoa(resp.StatusCode)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_ephemeral_port"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

func dropReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return "close_" + strconv.Itoa(ce.Code)
	}
	return classify(err, nil)
}

// Frame buffers are borrowed only while a frame is being handled, so
// thousands of idle connections hold none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxReadFrame = 1 << 20

var errFrameTooLarge = errors.New("frame larger than 1 MiB")

// readAll reads one frame into *bp, growing it as needed.
func readAll(r io.Reader, bp *[]byte) ([]byte, error) {
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			if cap(b) >= maxReadFrame {
				return nil, errFrameTooLarge
			}
			b = append(b, 0)[:len(b)]
			*bp = b
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Event frames are {"type":"event",…,"data":{"r":RUN,"s":SEQ,"t":NS},…}
// where data is what this tool published.
var (
	eventPrefix = []byte(`{"type":"event"`)
	dataKey     = []byte(`"data":`)
)

type benchData struct {
	R uint64 `json:"r"` // run id
	S uint64 `json:"s"` // sequence number
	T int64  `json:"t"` // publish start, ns since the run's origin
}

// parseEvent extracts the bench data of an event frame without
// allocating when the data is laid out as published; ok is false for
// frames that are not events or carry no bench data.
func parseEvent(f []byte) (d benchData, ok bool) {
	if !bytes.HasPrefix(f, eventPrefix) {
		return d, false
	}
	i := bytes.Index(f, dataKey)
	if i < 0 {
		return d, false
	}
	rest := f[i+len(dataKey):]
	var ok1, ok2, ok3 bool
	if rest, ok1 = expect(rest, `{"r":`); ok1 {
		d.R, rest, ok1 = parseUint(rest)
	}
	if rest, ok2 = expect(rest, `,"s":`); ok1 && ok2 {
		d.S, rest, ok2 = parseUint(rest)
	}
	var t uint64
	if rest, ok3 = expect(rest, `,"t":`); ok1 && ok2 && ok3 {
		t, rest, ok3 = parseUint(rest)
		d.T = int64(t)
	}
	if ok1 && ok2 && ok3 && len(rest) > 0 && rest[0] == '}' {
		return d, true
	}
	return parseEventSlow(f)
}

// parseEventSlow decodes the frame in full, for data the server may have
// re-encoded differently.
func parseEventSlow(f []byte) (benchData, bool) {
	var fr struct {
		Type string     `json:"type"`
		Data *benchData `json:"data"`
	}
	if err := jsonUnmarshal(f, &fr); err != nil || fr.Type != "event" || fr.Data == nil || fr.Data.R == 0 {
		return benchData{}, false
	}
	return *fr.Data, true
}

func expect(b []byte, s string) ([]byte, bool) {
	if len(b) < len(s) || string(b[:len(s)]) != s {
		return b, false
	}
	return b[len(s):], true
}

func parseUint(b []byte) (uint64, []byte, bool) {
	var v uint64
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	return v, b[i:], i > 0
}

func appendData(buf []byte, d benchData) []byte {
	buf = append(buf, `{"r":`...)
	buf = strconv.AppendUint(buf, d.R, 10)
	buf = append(buf, `,"s":`...)
	buf = strconv.AppendUint(buf, d.S, 10)
	buf = append(buf, `,"t":`...)
	buf = strconv.AppendInt(buf, d.T, 10)
	return append(buf, '}')
}
