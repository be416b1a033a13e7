package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// poster posts events with keep-alive connections, one per publisher.
type poster struct {
	client *http.Client
	single string // .../v1/events
	batch  string // .../v1/events/batch
	auth   string
}

func (b *bench) newPoster(conns int) *poster {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           b.cfg.target.dial,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		DisableCompression:    true,
	}
	return &poster{
		client: &http.Client{
			Transport: tr,
			Timeout:   15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		single: b.cfg.target.base + "/v1/events",
		batch:  b.cfg.target.base + "/v1/events/batch",
		auth:   "Bearer " + b.cfg.apiKey,
	}
}

// post sends body to u and returns the status. When out is non-nil the
// response body is read into it, else discarded (so the connection is
// reused either way).
func (p *poster) post(ctx context.Context, u string, body []byte, out *bytes.Buffer) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = http.Header{"Authorization": {p.auth}, "Content-Type": {"application/json"}}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	if out != nil {
		out.Reset()
		_, err = out.ReadFrom(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	return resp.StatusCode, err
}

func (p *poster) close() { p.client.CloseIdleConnections() }

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
func retryAfter(ctx context.Context, status int) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == 0 {
		sleepCtx(ctx, 10*time.Millisecond)
	}
}
