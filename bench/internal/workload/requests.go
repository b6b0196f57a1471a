package workload

import (
	"context"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
)

// batchTimeout bounds one batch, so that a stuck target cannot stall the run.
const batchTimeout = 3 * time.Minute

// requestRun is one closed-loop GET workload over several targets.
type requestRun struct {
	targets     []*load.Target
	upstreamPID int
	path        string
	concurrency int
	requests    int // per target, over all rounds
	rounds      int
	// send, when set, sends one request to a target instead of a GET of
	// path.
	send func(context.Context, *load.Target) error
}

// tally adds up one target's batches.
type tally struct {
	latencies   []time.Duration
	elapsed     time.Duration
	errors      int
	firstErr    error
	proxyCPU    float64
	upstreamCPU float64
	dials       int64
}

// run warms every target up, then takes rounds turns, each target sending
// requests/rounds requests per turn. Connections are counted from before
// the warm-up, which is where a client opens most of them.
func (r requestRun) run(ctx context.Context) []results.Load {
	perBatch := max(r.requests/r.rounds, 1)
	dials := make(map[*load.Target]int64, len(r.targets))
	for _, t := range r.targets {
		t.CloseIdle()
		dials[t] = t.Dials()
		load.Run(ctx, r.batch(t, min(perBatch, 200)))
	}
	tallies := make(map[*load.Target]*tally, len(r.targets))
	for _, t := range r.targets {
		tallies[t] = &tally{}
	}
	for round := range r.rounds {
		for _, t := range rotated(r.targets, round) {
			tallies[t].add(r.measure(ctx, t, perBatch))
		}
	}
	var out []results.Load
	for _, t := range r.targets {
		tallies[t].dials = t.Dials() - dials[t]
		out = append(out, tallies[t].result(t, r.concurrency, r.upstreamPID))
	}
	return out
}

func (r requestRun) batch(t *load.Target, n int) load.Batch {
	b := load.Batch{Target: t, Path: r.path, Requests: n, Concurrency: r.concurrency, Duration: batchTimeout}
	if r.send != nil {
		b.Send = func(ctx context.Context) error { return r.send(ctx, t) }
	}
	return b
}

// measure runs one batch and reads the CPU the proxy and the upstream
// spent on it; only one target is busy at a time, so all of it is this
// target's.
func (r requestRun) measure(ctx context.Context, t *load.Target, n int) tally {
	proxy0, up0 := cpuSeconds(t.PID), cpuSeconds(r.upstreamPID)
	s := load.Run(ctx, r.batch(t, n))
	return tally{
		latencies:   s.Latencies,
		elapsed:     s.Elapsed,
		errors:      s.Errors,
		firstErr:    s.FirstErr,
		proxyCPU:    cpuSeconds(t.PID) - proxy0,
		upstreamCPU: cpuSeconds(r.upstreamPID) - up0,
	}
}

func (a *tally) add(b tally) {
	a.latencies = append(a.latencies, b.latencies...)
	a.elapsed += b.elapsed
	a.errors += b.errors
	if a.firstErr == nil {
		a.firstErr = b.firstErr
	}
	a.proxyCPU += b.proxyCPU
	a.upstreamCPU += b.upstreamCPU
}

func (a *tally) result(t *load.Target, concurrency, upstreamPID int) results.Load {
	n := len(a.latencies)
	res := results.Load{
		Target:      t.Name,
		Concurrency: concurrency,
		Requests:    n,
		Errors:      a.errors,
		FirstError:  errString(a.firstErr),
		Seconds:     a.elapsed.Seconds(),
		Latency:     load.Summarize(a.latencies),
		Connections: a.dials,
	}
	res.CDF = load.CDF(a.latencies, 200)
	if a.elapsed > 0 {
		res.RPS = float64(n) / a.elapsed.Seconds()
	}
	if n > 0 && t.PID != 0 {
		v := a.proxyCPU / float64(n) * 1000
		res.ProxyCPUPer1k = &v
	}
	if n > 0 && upstreamPID != 0 {
		v := a.upstreamCPU / float64(n) * 1000
		res.UpstreamCPUPer1k = &v
	}
	return res
}
