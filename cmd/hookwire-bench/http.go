package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// poster posts events over keep-alive HTTP/1.1 connections, one per
// publisher goroutine. It writes each request with one write and parses
// the answer with http.ReadResponse on the publisher's own goroutine:
// net/http's Transport would add two goroutines and their wake-ups to
// every request, and this tool shares the CPUs with the server it
// measures.
type poster struct {
	t      *target
	tls    *tls.Config // nil for http://
	host   string
	auth   string
	single string // /v1/events
	batch  string // /v1/events/batch
	idle   chan *rawConn
}

type rawConn struct {
	c  net.Conn
	br *bufio.Reader
	wb []byte
}

const requestTimeout = 15 * time.Second

func (b *bench) newPoster(conns int) *poster {
	t := b.cfg.target
	p := &poster{
		t: t, host: t.host, auth: "Bearer " + b.cfg.apiKey,
		single: "/v1/events", batch: "/v1/events/batch",
		idle: make(chan *rawConn, conns),
	}
	if t.https {
		p.tls = &tls.Config{ServerName: t.hostname}
	}
	return p
}

func (p *poster) get(ctx context.Context) (*rawConn, error) {
	select {
	case rc := <-p.idle:
		return rc, nil
	default:
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := p.t.dial(dctx, "tcp", p.t.hostport)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(c, p.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 4096), wb: make([]byte, 0, 512)}, nil
}

func (p *poster) put(rc *rawConn) {
	select {
	case p.idle <- rc:
	default:
		rc.c.Close()
	}
}

// post sends body to path and returns the status. When out is non-nil
// the response body is read into it, else discarded. A connection that
// failed or that the server closes is not reused.
func (p *poster) post(ctx context.Context, path string, body []byte, out *bytes.Buffer) (int, error) {
	rc, err := p.get(ctx)
	if err != nil {
		return 0, err
	}
	dl := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	rc.c.SetDeadline(dl)
	w := append(rc.wb[:0], "POST "...)
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, p.host...)
	w = append(w, "\r\nAuthorization: "...)
	w = append(w, p.auth...)
	w = append(w, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	w = strconv.AppendInt(w, int64(len(body)), 10)
	w = append(w, "\r\n\r\n"...)
	w = append(w, body...)
	rc.wb = w
	if _, err := rc.c.Write(w); err != nil {
		rc.c.Close()
		return 0, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.c.Close()
		return 0, err
	}
	if out != nil {
		out.Reset()
		_, err = out.ReadFrom(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil || resp.Close {
		rc.c.Close()
	} else {
		p.put(rc)
	}
	return resp.StatusCode, err
}

func (p *poster) close() {
	for {
		select {
		case rc := <-p.idle:
			rc.c.Close()
		default:
			return
		}
	}
}

// statusCounts counts outcomes by HTTP status ("net" for transport
// errors), safe for concurrent use.
type statusCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (s *statusCounts) add(status int, err error, n int64) {
	k := strconv.Itoa(status)
	if err != nil {
		k = "net_" + classify(err, nil)
		if errors.Is(err, errFrameTooLarge) {
			k = "too_large"
		}
	}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]int64{}
	}
	s.m[k] += n
	s.mu.Unlock()
}

func (s *statusCounts) snapshot() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

func (s *statusCounts) total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t int64
	for _, v := range s.m {
		t += v
	}
	return t
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// retryAfter pauses a publisher after a refusal, so that a server that
// answers 429 or 503 is not hammered in a tight loop.
func (b *bench) retryAfter(ctx context.Context, status int) {
	if status == http.StatusTooManyRequests {
		b.saw429.Store(true)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == 0 {
		sleepCtx(ctx, 10*time.Millisecond)
	}
}
