package main

import (
	"bytes"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
)

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://127.1.2.3:1", "http://[::1]:8080", "http://localhost:8080", "https://127.0.0.1"} {
		pu, _ := url.Parse(u)
		tg, err := resolveLoopback(t.Context(), pu)
		if err != nil {
			t.Errorf("%s refused: %v", u, err)
			continue
		}
		for _, ip := range tg.ips {
			if !isLoopback(ip) {
				t.Errorf("%s pinned to %s", u, ip)
			}
		}
		if _, err := tg.dial(t.Context(), "tcp", "example.com:80"); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%s: dial to another address = %v, want refusal", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://0.0.0.0:8080", "http://[::ffff:10.1.1.1]:80", "http://192.168.1.10", "http://[::]:80", "http://[fe80::1]:80"} {
		pu, _ := url.Parse(u)
		if _, err := resolveLoopback(t.Context(), pu); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%s: err = %v, want refusal", u, err)
		}
	}
	// The whole tool refuses before doing anything.
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"ingest", "--url", "http://10.0.0.1:8080", "--api-key", "k", "--duration", "1s"}, &out, &errb)
	if err == nil || out.Len() != 0 {
		t.Fatalf("run against 10.0.0.1 = %v, stdout %q", err, out.String())
	}
}

func TestFlagCaps(t *testing.T) {
	base := []string{"--url", "http://127.0.0.1:1", "--api-key", "k", "--jwt-secret", "s"}
	for _, args := range [][]string{
		{"idle", "--conns", "1000000"},
		{"idle", "--duration", "11m"},
		{"idle", "--duration", "0s"},
		{"personal", "--rate", "1e9"},
		{"personal", "--publishers", "100000"},
		{"broadcast", "--subscribers", "20000", "--rate", "1000"},
		{"ingest", "--batch", "1001"},
		{"ingest", "--conns", "5"}, // not a flag of ingest
		{"nosuch"},
		{},
	} {
		var out, errb bytes.Buffer
		err := run(t.Context(), append(args, base...), &out, &errb)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	// Missing credentials.
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"personal", "--url", "http://127.0.0.1:1"}, &out, &errb); !errors.Is(err, errUsage) {
		t.Errorf("personal without credentials: %v", err)
	}
}

func TestParseEvent(t *testing.T) {
	d := benchData{R: 1234567, S: 42, T: 987654321012}
	data := string(appendData(nil, d))
	frame := `{"type":"event","id":"evt_X","cursor":"abc-1-0","event":"bench.personal","data":` + data + `,"time":"2026-01-01T00:00:00Z"}`
	got, ok := parseEvent([]byte(frame))
	if !ok || got != d {
		t.Fatalf("parseEvent = %+v %v, want %+v", got, ok, d)
	}
	fb := []byte(frame)
	if n := testing.AllocsPerRun(100, func() { parseEvent(fb) }); n != 0 {
		t.Errorf("parseEvent allocates %v times", n)
	}
	// Re-encoded data (other key order, spaces) takes the slow path.
	frame2 := `{"type":"event","id":"evt_X","cursor":"c","event":"e","channel":"bench.broadcast","data":{"t":987654321012, "s":42,"r":1234567},"time":"x"}`
	if got, ok := parseEvent([]byte(frame2)); !ok || got != d {
		t.Fatalf("slow path = %+v %v", got, ok)
	}
	for _, f := range []string{
		`{"type":"welcome","user":"u","conn":"c"}`,
		`{"type":"event","id":"e","data":{"balance":"10"}}`,
		`{"type":"event","id":"e","data":null}`,
		`not json`,
	} {
		if _, ok := parseEvent([]byte(f)); ok {
			t.Errorf("parseEvent(%s) ok", f)
		}
	}
}

func TestHist(t *testing.T) {
	var h hist
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1µs .. 100ms
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100000 * 1000
		got := float64(h.quantile(q))
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("q%.3f = %.0f, want %.0f ±1%%", q, got, want)
		}
	}
	if h.max.Load() != 100000*1000 {
		t.Errorf("max = %d", h.max.Load())
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 1 << 40, math.MaxInt64} {
		if mid := bucketMid(bucketOf(v)); math.Abs(float64(mid-v)) > float64(v)/100+1 {
			t.Errorf("bucket of %d has middle %d", v, mid)
		}
	}
}

func TestProcParsing(t *testing.T) {
	stat := []byte("1234 (we ird) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 1000 50 18446744073709551615\n")
	v, err := parseStat(stat)
	if err != nil || v != 3.25 {
		t.Fatalf("parseStat = %v %v, want 3.25", v, err)
	}
	status := []byte("Name:\thookwire\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads:\t8\n")
	if rss, err := parseVmRSS(status); err != nil || rss != 2048*1024 {
		t.Fatalf("parseVmRSS = %v %v", rss, err)
	}
	ps := []byte("cpu  100 5 50 1000 7 3 2 1 9 9\ncpu0 1 2 3 4 5 6 7 8\n")
	if v, err := parseProcStat(ps); err != nil || v != 1.6 {
		t.Fatalf("parseProcStat = %v %v, want 1.6", v, err)
	}
	if _, err := readCPU(1 << 30); err == nil {
		t.Error("readCPU of a missing pid succeeded")
	}
}

func TestCountBatch(t *testing.T) {
	var errs statusCounts
	ok := `{"results":[{"status":202,"id":"a","cursor":"c"},{"status":200,"id":"b","cursor":"c","duplicate":true},{"status":400,"error":{"type":"t","title":"x","status":400,"detail":"d"}}]}`
	a, d := countBatch([]byte(ok), 3, &errs)
	if a != 1 || d != 1 {
		t.Fatalf("countBatch = %d %d", a, d)
	}
	if m := errs.snapshot(); len(m) != 1 || m["400"] != 1 {
		t.Fatalf("event errors = %v", m)
	}
	body := appendIngest(nil, 3, 10, 3)
	if !bytes.HasPrefix(body, []byte(`{"events":[{"type":"bench.ingest","users":["ingest-10"],"data":{"p":3,"s":10}},`)) {
		t.Fatalf("batch body %s", body)
	}
}
