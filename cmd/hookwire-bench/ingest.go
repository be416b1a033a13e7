package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// IngestFigures are the ingest scenario's results.
type IngestFigures struct {
	Endpoint             string           `json:"endpoint"`
	Requests             int64            `json:"requests"`
	RequestsOK           int64            `json:"requests_ok"`
	EventsPosted         int64            `json:"events_posted"`
	EventsAccepted       int64            `json:"events_accepted"`
	EventsDuplicate      int64            `json:"events_duplicate"`
	Errors               int64            `json:"errors"`                           // failed requests
	ErrorsByStatus       map[string]int64 `json:"errors_by_status,omitempty"`       // failed requests by HTTP status
	EventErrorsByStatus  map[string]int64 `json:"event_errors_by_status,omitempty"` // batch: refused events inside a 200 answer
	AcceptedPerS         float64          `json:"accepted_per_s"`
	RequestsPerS         float64          `json:"requests_per_s"`
	AcceptedPerServerCPU *float64         `json:"accepted_per_server_cpu_s"`
	RequestLatency       Latency          `json:"request_latency"`
}

// ingest posts as fast as cfg.pubs publishers can for cfg.duration, to
// users nobody is connected as, so it measures ingest alone.
func (b *bench) ingest(ctx context.Context) error {
	cfg := b.cfg
	f := &IngestFigures{Endpoint: "/v1/events"}
	if cfg.batch > 0 {
		f.Endpoint = "/v1/events/batch"
	}
	b.rep.Figures = f
	per := int64(max(cfg.batch, 1))
	pst := b.newPoster(cfg.pubs)
	defer pst.close()

	var reqs, oks, posted, accepted, dupes atomic.Int64
	var reqErrs, evErrs statusCounts
	var lat hist
	w := b.startWindow()
	start := time.Now()
	deadline := start.Add(cfg.duration)
	dctx, cancel := context.WithDeadline(ctx, deadline.Add(15*time.Second))
	defer cancel()
	stop := b.progress(func() string {
		return fmt.Sprintf("ingest: %d requests, %d events accepted, %d failed requests", reqs.Load(), accepted.Load(), reqErrs.total())
	})
	var wg sync.WaitGroup
	for pub := range cfg.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			body := make([]byte, 0, 128*per+32)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				first := posted.Add(per) - per
				if first+per > int64(cfg.maxEvents) {
					posted.Add(-per)
					return
				}
				body = appendIngest(body[:0], pub, first, cfg.batch)
				t0 := b.now()
				var status int
				var err error
				if cfg.batch == 0 {
					status, err = pst.post(dctx, pst.single, append([]byte(nil), body...), nil)
				} else {
					status, err = pst.post(dctx, pst.batch, append([]byte(nil), body...), &out)
				}
				lat.record(b.now() - t0)
				reqs.Add(1)
				switch {
				case err != nil:
					reqErrs.add(0, err, 1)
				case cfg.batch == 0 && status == 202:
					oks.Add(1)
					accepted.Add(1)
				case cfg.batch == 0 && status == 200:
					oks.Add(1)
					dupes.Add(1)
				case cfg.batch > 0 && status == 200:
					oks.Add(1)
					a, d := countBatch(out.Bytes(), cfg.batch, &evErrs)
					accepted.Add(a)
					dupes.Add(d)
				default:
					reqErrs.add(status, nil, 1)
				}
				if err != nil || (status != 200 && status != 202) {
					b.retryAfter(ctx, status)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := w.stop()
	stop()

	b.rep.MeasuredS = round3(elapsed.Seconds())
	f.Requests = reqs.Load()
	f.RequestsOK = oks.Load()
	f.EventsPosted = posted.Load()
	f.EventsAccepted = accepted.Load()
	f.EventsDuplicate = dupes.Load()
	f.ErrorsByStatus = reqErrs.snapshot()
	f.EventErrorsByStatus = evErrs.snapshot()
	f.Errors = reqErrs.total()
	f.AcceptedPerS = round3(float64(f.EventsAccepted) / elapsed.Seconds())
	f.RequestsPerS = round3(float64(f.Requests) / elapsed.Seconds())
	f.AcceptedPerServerCPU = b.perServerCPU(float64(f.EventsAccepted))
	f.RequestLatency = lat.summary()
	b.logf("ingest %s: %d events accepted in %.1fs (%.0f/s), %d failed requests, p50 %.3fms p99 %.3fms",
		f.Endpoint, f.EventsAccepted, elapsed.Seconds(), f.AcceptedPerS, f.Errors, f.RequestLatency.P50, f.RequestLatency.P99)
	if f.EventsPosted >= int64(cfg.maxEvents)-per*int64(cfg.pubs) {
		b.warn("stopped at --max-events %d", cfg.maxEvents)
	}
	return nil
}

// appendIngest appends one request body: a single event, or a batch of n.
// Events go to users nobody is connected as.
func appendIngest(buf []byte, pub int, first int64, n int) []byte {
	one := func(buf []byte, seq int64) []byte {
		buf = append(buf, `{"type":"bench.ingest","users":["ingest-`...)
		buf = strconv.AppendInt(buf, seq%1000, 10)
		buf = append(buf, `"],"data":{"p":`...)
		buf = strconv.AppendInt(buf, int64(pub), 10)
		buf = append(buf, `,"s":`...)
		buf = strconv.AppendInt(buf, seq, 10)
		return append(buf, `}}`...)
	}
	if n == 0 {
		return one(buf, first)
	}
	buf = append(buf, `{"events":[`...)
	for k := range int64(n) {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = one(buf, first+k)
	}
	return append(buf, `]}`...)
}

var (
	result202 = []byte(`{"status":202`)
	result200 = []byte(`{"status":200`)
)

// countBatch counts a batch answer's accepted and duplicate events. Each
// result object starts with its status (a nested problem starts with
// "type"), so counting suffices; the rest are decoded for their status.
func countBatch(body []byte, n int, evErrs *statusCounts) (accepted, dupes int64) {
	accepted = int64(bytes.Count(body, result202))
	dupes = int64(bytes.Count(body, result200))
	if int(accepted+dupes) == n {
		return accepted, dupes
	}
	var ans struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	if err := jsonUnmarshal(body, &ans); err != nil {
		evErrs.add(0, fmt.Errorf("undecodable batch answer: %w", err), int64(n)-accepted-dupes)
		return accepted, dupes
	}
	if len(ans.Results) != n {
		evErrs.add(-1, nil, int64(n-len(ans.Results)))
	}
	for _, r := range ans.Results {
		if r.Status != 202 && r.Status != 200 {
			evErrs.add(r.Status, nil, 1)
		}
	}
	return accepted, dupes
}
