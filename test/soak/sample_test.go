package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/procstat"
)

// sample is kip's state at one moment, and the traffic's so far.
type sample struct {
	at time.Time
	// stage is "baseline", "load" or "after" (load stopped, clients'
	// connections closed).
	stage string
	// rss is VmRSS in bytes, goroutines is go_goroutines from kip's
	// /metrics, fds the open file descriptors; -1 when it could not be read.
	rss, goroutines, fds int64
	served, failed       int64
	restarting           bool
}

// probe reads kip's state: memory and descriptors from /proc, goroutines
// from the probe port, which serves even while the upstream is down.
type probe struct {
	pid        int
	metricsURL string
	client     *http.Client
}

func (p probe) read(ctx context.Context) (rss, goroutines, fds int64) {
	rss, goroutines, fds = -1, -1, -1
	if v, err := procstat.RSS(p.pid); err == nil {
		rss = v
	}
	if entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid)); err == nil {
		fds = int64(len(entries))
	}
	if v, err := p.goroutines(ctx); err == nil {
		goroutines = v
	}
	return rss, goroutines, fds
}

func (p probe) goroutines(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", p.metricsURL, resp.Status)
	}
	return parseGoroutines(io.LimitReader(resp.Body, 16<<20))
}

// parseGoroutines reads go_goroutines from Prometheus' text format.
func parseGoroutines(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "go_goroutines" {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil || v < 0 || v > 1e9 || v != math.Trunc(v) {
			return 0, fmt.Errorf("go_goroutines %q is not a count", fields[1])
		}
		return int64(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_goroutines in the metrics")
}

func TestParseGoroutines(t *testing.T) {
	for _, tc := range []struct {
		name, metrics string
		want          int64
		wantErr       bool
	}{
		{name: "component-base", want: 123, metrics: "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 123\ngo_threads 9\n"},
		{name: "scientific notation", metrics: "go_goroutines 1.5e+03\n", want: 1500},
		{name: "a lookalike comes first", metrics: "go_goroutines_total 7\ngo_goroutines 8\n", want: 8},
		{name: "missing", metrics: "go_threads 9\n", wantErr: true},
		{name: "NaN", metrics: "go_goroutines NaN\n", wantErr: true},
		{name: "negative", metrics: "go_goroutines -1\n", wantErr: true},
		{name: "fraction", metrics: "go_goroutines 1.5\n", wantErr: true},
		{name: "absurd", metrics: "go_goroutines 1e30\n", wantErr: true},
		{name: "no value", metrics: "go_goroutines\n", wantErr: true},
		{name: "huge line first", metrics: strings.Repeat("x", 2<<20) + "\ngo_goroutines 5\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGoroutines(strings.NewReader(tc.metrics))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
