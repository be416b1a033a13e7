package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const broadcastChannel = "bench.broadcast"

// DeliveryFigures are the personal and broadcast scenarios' results.
type DeliveryFigures struct {
	ConnFigures
	ControlConns         int              `json:"control_conns,omitempty"`
	EventsScheduled      int              `json:"events_scheduled"`
	EventsSkipped        int64            `json:"events_skipped"` // not published: the tool fell behind its schedule
	EventsPublished      int64            `json:"events_published"`
	EventsAccepted       int64            `json:"events_accepted"`
	PublishErrors        map[string]int64 `json:"publish_errors_by_status,omitempty"`
	AcceptedPerS         float64          `json:"accepted_per_s"`
	AcceptedPerServerCPU *float64         `json:"accepted_per_server_cpu_s"`
	Expected             int64            `json:"expected_deliveries"`
	Delivered            int64            `json:"deliveries"`
	Lost                 int64            `json:"lost"`
	Duplicated           int64            `json:"duplicated"`
	Misrouted            int64            `json:"misrouted"`
	DeliveredUnaccepted  int64            `json:"delivered_unaccepted"` // frames of events whose POST did not answer 202
	Foreign              int64            `json:"foreign_frames"`       // event frames not from this run
	OtherFrames          int64            `json:"other_frames"`         // non-event frames after welcome
	DeliveriesPerS       float64          `json:"deliveries_per_s"`
	DeliveriesPerCPU     *float64         `json:"deliveries_per_server_cpu_s"`
	DrainS               float64          `json:"drain_s"` // publish end → last expected delivery (or grace)
	Latency              Latency          `json:"latency"` // publish start → frame received
	RequestLatency       Latency          `json:"request_latency"`
	PublishLag           Latency          `json:"publish_lag"` // scheduled → actual publish start
}

// delivery is the bookkeeping of one personal or broadcast run.
type delivery struct {
	b         *bench
	broadcast bool
	run       uint64
	total     int
	targets   []int32         // personal: the user (connection) of each event
	status    []atomic.Int32  // HTTP status of each event's POST (0: not sent)
	recv      []atomic.Uint32 // first deliveries of each event
	seen      [][]uint64      // broadcast: per connection, a bit per event
	lat, req  hist
	lag       hist

	firsts, dups, misrouted, foreign, other atomic.Int64
}

func (d *delivery) onFrame(i int, f []byte) {
	now := d.b.now()
	data, ok := parseEvent(f)
	if !ok {
		d.other.Add(1)
		return
	}
	if data.R != d.run || data.S >= uint64(d.total) {
		d.foreign.Add(1)
		return
	}
	seq := int(data.S)
	if d.broadcast {
		w, bit := seq/64, uint64(1)<<(seq%64)
		if d.seen[i][w]&bit != 0 {
			d.dups.Add(1)
			return
		}
		d.seen[i][w] |= bit
		d.recv[seq].Add(1)
	} else {
		if d.targets[seq] != int32(i) {
			d.misrouted.Add(1)
			return
		}
		if d.recv[seq].Add(1) != 1 {
			d.dups.Add(1)
			return
		}
	}
	d.firsts.Add(1)
	d.lat.record(now - data.T)
}

// outstanding counts the deliveries still expected: per accepted event,
// perEvent minus those received.
func (d *delivery) outstanding(perEvent uint32) int64 {
	var n int64
	for s := range d.total {
		if d.status[s].Load() == 202 {
			if r := d.recv[s].Load(); r < perEvent {
				n += int64(perEvent - r)
			}
		}
	}
	return n
}

// deliver runs the personal or broadcast scenario: open the connections,
// publish on a fixed schedule for cfg.duration, wait up to cfg.grace for
// the outstanding deliveries, and account for every event.
func (b *bench) deliver(ctx context.Context) error {
	cfg := b.cfg
	var rb [8]byte
	rand.Read(rb[:])
	d := &delivery{
		b:         b,
		broadcast: cfg.scenario == "broadcast",
		run:       binary.LittleEndian.Uint64(rb[:])>>12 | 1, // non-zero, exact in a float64
		total:     int(cfg.rate * cfg.duration.Seconds()),
	}
	d.status = make([]atomic.Int32, d.total)
	d.recv = make([]atomic.Uint32, d.total)
	f := &DeliveryFigures{EventsScheduled: d.total}
	b.rep.Figures = f

	var p, control *pool
	if d.broadcast {
		d.seen = make([][]uint64, cfg.conns)
		words := (d.total + 63) / 64
		for i := range d.seen {
			d.seen[i] = make([]uint64, words)
		}
		p = b.newPool("broadcast", cfg.conns, func(i int) string { return "bcast-" + strconv.Itoa(i) },
			[]string{"bench.*"}, "channels="+broadcastChannel, d.onFrame)
		// A few connections of other users, allowed the channel but not
		// subscribed to it: any event they receive is misrouted.
		f.ControlConns = 10
		control = b.newPool("control", f.ControlConns, func(i int) string { return "bcast-control-" + strconv.Itoa(i) },
			[]string{"bench.*"}, "", func(int, []byte) { d.misrouted.Add(1) })
	} else {
		d.targets = make([]int32, d.total)
		for s := range d.targets {
			d.targets[s] = int32(mrand.IntN(cfg.conns))
		}
		p = b.newPool("personal", cfg.conns, func(i int) string { return "personal-" + strconv.Itoa(i) }, nil, "", d.onFrame)
	}

	stop := b.progress(p.status)
	openTime := p.open(ctx)
	if control != nil {
		control.open(ctx)
	}
	stop()
	b.logf("%s in %.1fs", p.status(), openTime.Seconds())
	defer func() {
		p.close()
		if control != nil {
			control.close()
		}
	}()
	if p.est.Load() == 0 {
		f.ConnFigures = p.figures(openTime)
		return fmt.Errorf("%s: %w: %v", cfg.scenario, errNoConns, f.FailureSamples)
	}
	// Connections are complete at welcome; a short pause lets the
	// server finish logging and scheduling before the window opens.
	sleepCtx(ctx, 200*time.Millisecond)

	// Publish.
	pst := b.newPoster(cfg.pubs)
	defer pst.close()
	var errs statusCounts
	var published, accepted, skipped atomic.Int64
	var next atomic.Int64
	w := b.startWindow()
	start := time.Now()
	deadline := start.Add(cfg.duration)
	stop = b.progress(func() string {
		return fmt.Sprintf("%s: published %d, accepted %d, delivered %d, %s", cfg.scenario,
			published.Load(), accepted.Load(), d.firsts.Load(), p.status())
	})
	var wg sync.WaitGroup
	for range cfg.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, 0, 256)
			for {
				seq := int(next.Add(1) - 1)
				if seq >= d.total {
					return
				}
				at := start.Add(time.Duration(float64(seq) / cfg.rate * float64(time.Second)))
				if !sleepUntil(ctx, at) {
					return
				}
				if time.Now().After(deadline) {
					skipped.Add(1)
					continue
				}
				t0 := b.now()
				d.lag.record(int64(time.Since(at)))
				body = d.appendEvent(body[:0], seq, t0)
				// A fresh copy: the transport may still hold the previous body.
				status, err := pst.post(ctx, pst.single, append([]byte(nil), body...), nil)
				d.req.record(b.now() - t0)
				published.Add(1)
				d.status[seq].Store(int32(status))
				if err == nil && status == 202 {
					accepted.Add(1)
				} else {
					errs.add(status, err, 1)
					b.retryAfter(ctx, status)
				}
			}
		}()
	}
	wg.Wait()
	pubEnd := time.Now()

	// Wait for the outstanding deliveries, at most cfg.grace.
	perEvent := uint32(1)
	if d.broadcast {
		perEvent = uint32(p.est.Load())
	}
	graceEnd := pubEnd.Add(cfg.grace)
	for d.outstanding(perEvent) > 0 && time.Now().Before(graceEnd) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	drain := time.Since(pubEnd)
	w.stop()
	stop()

	// Account for every event.
	window := pubEnd.Sub(start)
	b.rep.MeasuredS = round3(window.Seconds())
	f.DrainS = round3(drain.Seconds())
	f.EventsSkipped = skipped.Load()
	f.EventsPublished = published.Load()
	f.EventsAccepted = accepted.Load()
	f.PublishErrors = errs.snapshot()
	for s := range d.total {
		r := d.recv[s].Load()
		if d.status[s].Load() != 202 {
			if r > 0 {
				f.DeliveredUnaccepted += int64(min(r, perEvent))
			}
			continue
		}
		f.Expected += int64(perEvent)
		f.Delivered += int64(min(r, perEvent))
	}
	f.Lost = f.Expected - f.Delivered
	f.Duplicated = d.dups.Load()
	f.Misrouted = d.misrouted.Load()
	f.Foreign = d.foreign.Load()
	f.OtherFrames = d.other.Load()
	f.Latency = d.lat.summary()
	f.RequestLatency = d.req.summary()
	f.PublishLag = d.lag.summary()
	f.AcceptedPerS = round3(float64(f.EventsAccepted) / window.Seconds())
	f.DeliveriesPerS = round3(float64(f.Delivered) / window.Seconds())
	f.AcceptedPerServerCPU = b.perServerCPU(float64(f.EventsAccepted))
	f.DeliveriesPerCPU = b.perServerCPU(float64(f.Delivered))
	f.ConnFigures = p.figures(openTime)
	b.logf("%s: accepted %d/%d, delivered %d/%d, lost %d, dup %d, misrouted %d, p50 %.3fms p99 %.3fms max %.3fms",
		cfg.scenario, f.EventsAccepted, d.total, f.Delivered, f.Expected, f.Lost, f.Duplicated, f.Misrouted,
		f.Latency.P50, f.Latency.P99, f.Latency.Max)
	if f.EventsSkipped > 0 {
		b.warn("the publishers fell behind: %d scheduled events were not published within --duration", f.EventsSkipped)
	}
	if f.ConnsEstablished < int64(cfg.conns) {
		b.warn("only %d of %d connections were established", f.ConnsEstablished, cfg.conns)
	}
	if f.ConnsDropped > 0 {
		b.warn("%d connections were closed by the server or the network (%v): their events count as lost", f.ConnsDropped, f.ConnDrops)
	}
	if control != nil && control.est.Load() < int64(f.ControlConns) {
		b.warn("only %d of %d control connections were established", control.est.Load(), f.ControlConns)
	}
	return nil
}

// appendEvent appends the ingest body of event seq, published at t.
func (d *delivery) appendEvent(buf []byte, seq int, t int64) []byte {
	if d.broadcast {
		buf = append(buf, `{"type":"bench.broadcast","channel":"`+broadcastChannel+`","data":`...)
	} else {
		buf = append(buf, `{"type":"bench.personal","users":["personal-`...)
		buf = strconv.AppendInt(buf, int64(d.targets[seq]), 10)
		buf = append(buf, `"],"data":`...)
	}
	buf = appendData(buf, benchData{R: d.run, S: uint64(seq), T: t})
	return append(buf, '}')
}
