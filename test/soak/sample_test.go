package soak

import (
	"bufio"
	"bytes"
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
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid)); err == nil {
		if v, err := parseVmRSS(status); err == nil {
			rss = v
		}
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

// parseVmRSS reads VmRSS, in bytes, from /proc/<pid>/status.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmRSS" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil || kb < 0 || kb > math.MaxInt64>>10 {
			return 0, fmt.Errorf("VmRSS %q is not a size in kB", value)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS in /proc status")
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

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{name: "kip", status: "Name:\tkip\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n", want: 10 << 20},
		{name: "kernel thread", status: "Name:\tkthreadd\nThreads:\t1\n", wantErr: true},
		{name: "garbage", status: "VmRSS:\tlots kB\n", wantErr: true},
		{name: "negative", status: "VmRSS:\t-5 kB\n", wantErr: true},
		{name: "overflow", status: "VmRSS:\t99999999999999999999 kB\n", wantErr: true},
		{name: "empty", status: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tc.status))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
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
