package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// IdleFigures are the idle scenario's results.
type IdleFigures struct {
	ConnFigures
	HoldS            float64  `json:"hold_s"`
	ServerRSSBefore  *int64   `json:"server_rss_before_bytes"`
	ServerRSSOpen    *int64   `json:"server_rss_after_open_bytes"`
	ServerRSSAfter   *int64   `json:"server_rss_after_bytes"`
	RSSPerConn       *int64   `json:"rss_per_conn_bytes"`
	OpenServerCPUS   *float64 `json:"open_server_cpu_s"`
	HoldServerCPUS   *float64 `json:"hold_server_cpu_s"`
	OpenCPUMsPerConn *float64 `json:"open_server_cpu_ms_per_conn"`
}

// idle opens cfg.conns connections at a bounded rate, holds them for
// cfg.duration while reading (so pings are answered), and measures the
// server's RSS and CPU.
func (b *bench) idle(ctx context.Context) error {
	cfg := b.cfg
	f := &IdleFigures{}
	b.rep.Figures = f
	rss := func() *int64 {
		if cfg.serverPID == 0 {
			return nil
		}
		v, err := readRSS(cfg.serverPID)
		if err != nil {
			return nil
		}
		return &v
	}
	p := b.newPool("idle", cfg.conns, func(i int) string { return "idle-" + strconv.Itoa(i) }, nil, "", nil)
	f.ServerRSSBefore = rss()
	w := b.startWindow()
	stop := b.progress(p.status)
	openTime := p.open(ctx)
	openCPU := b.serverCPUNow()
	b.logf("%s in %.1fs", p.status(), openTime.Seconds())
	f.ServerRSSOpen = rss()

	holdStart := time.Now()
	if p.est.Load() > 0 {
		sleepCtx(ctx, cfg.duration)
	}
	f.HoldS = round3(time.Since(holdStart).Seconds())
	f.ServerRSSAfter = rss()
	holdCPU := b.serverCPUNow()
	elapsed := w.stop()
	stop()
	b.logf("%s after holding %.1fs", p.status(), f.HoldS)
	p.close()

	f.ConnFigures = p.figures(openTime)
	b.rep.MeasuredS = round3(elapsed.Seconds())
	if w.serverOK && openCPU >= 0 && holdCPU >= 0 {
		o, h := round3(openCPU-w.server), round3(holdCPU-openCPU)
		f.OpenServerCPUS, f.HoldServerCPUS = &o, &h
		if f.ConnsEstablished > 0 {
			v := round3(o * 1000 / float64(f.ConnsEstablished))
			f.OpenCPUMsPerConn = &v
		}
	}
	if f.ServerRSSBefore != nil && f.ServerRSSAfter != nil && f.ConnsEstablished > 0 {
		v := int64(math.Round(float64(*f.ServerRSSAfter-*f.ServerRSSBefore) / float64(f.ConnsEstablished)))
		f.RSSPerConn = &v
		b.logf("server RSS %s → %s: %d bytes per connection", mib(*f.ServerRSSBefore), mib(*f.ServerRSSAfter), v)
	}
	if f.ConnsEstablished < int64(cfg.conns) {
		b.warn("only %d of %d connections were established", f.ConnsEstablished, cfg.conns)
	}
	if f.ConnsDropped > 0 {
		b.warn("%d connections were closed by the server or the network during the hold", f.ConnsDropped)
	}
	if f.ConnsEstablished == 0 {
		return fmt.Errorf("idle: %w: %v", errNoConns, f.FailureSamples)
	}
	return nil
}

// serverCPUNow is the server's CPU seconds so far, or -1.
func (b *bench) serverCPUNow() float64 {
	if b.cfg.serverPID == 0 {
		return -1
	}
	v, err := readCPU(b.cfg.serverPID)
	if err != nil {
		return -1
	}
	return v
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
