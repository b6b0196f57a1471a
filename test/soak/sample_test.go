package soak

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/kip-proxy/kip/internal/rig/harness"
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
	m, err := harness.ScrapeMetrics(ctx, p.client, p.metricsURL)
	if err != nil {
		return 0, err
	}
	return m.Count("go_goroutines")
}
