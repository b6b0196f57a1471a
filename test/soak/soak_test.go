package soak

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/binaries"
)

// TestSoakHour runs the soak the package documentation describes, writes
// its report, and fails if kip exited, if any request failed while the
// upstream was not restarting, if a stream carried wrong data, if a kind
// of request was not served again after the last restart, or if kip's
// goroutines did not come back to their baseline once the load stopped.
func TestSoakHour(t *testing.T) {
	if os.Getenv("KIP_SOAK") == "" {
		t.Skip("the one-hour soak: run with `make soak-hour` (KIP_SOAK=1)")
	}
	root, err := binaries.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(os.Getenv, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Start-up, warm-up and the wait after the load take up to ten minutes.
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < cfg.duration+10*time.Minute {
		t.Fatalf("go test's -timeout leaves %s, but a %s soak needs %s more: raise -timeout (make soak-hour SOAK_HOUR_TIMEOUT=…)",
			time.Until(deadline).Round(time.Second), cfg.duration, 10*time.Minute)
	}
	startCtx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	r, err := startRig(startCtx, os.Stderr)
	cancel()
	if err != nil {
		t.Fatalf("starting the soak's rig: %v", err)
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stopping the rig: %v", err)
		}
	})
	if err := warmUp(r); err != nil {
		t.Fatalf("warming up: %v", err)
	}
	s := &soak{cfg: cfg, r: r, tally: newTally(), log: t.Logf,
		probe: probe{pid: r.kip.Pid(), metricsURL: r.metricsURL, client: &http.Client{}}}
	tr, err := newTraffic(r, s.tally, defaultMix)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.measureBaseline(ctx, tr)
	s.runLoad(ctx, tr)
	s.waitForRelease(ctx, tr)

	rep := s.report()
	if err := rep.write(cfg.out, r.kip.LogPath); err != nil {
		t.Errorf("writing the report: %v", err)
	}
	t.Logf("report in %s:\n%s", cfg.out, rep.summary())
	for _, problem := range rep.problems() {
		t.Error(problem)
	}
}

// soak is one run: its configuration, rig, counts and samples.
type soak struct {
	cfg   config
	r     *rig
	tally *tally
	probe probe
	log   func(format string, args ...any)

	mu        sync.Mutex
	samples   []sample
	loadStart time.Time
	loadEnd   time.Time
	// kipExited is set when kip ended during the load.
	kipExited error
}

// warmUp sends one request of every kind, each stream kind over each
// transport to each node, and fails if any fails: a soak on a broken rig
// would measure nothing. It counts into a tally of its own.
func warmUp(r *rig) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tl := newTally()
	tr, err := newTraffic(r, tl, defaultMix)
	if err != nil {
		return err
	}
	defer tr.closeAll()
	tr.get(ctx, tr.h2)
	tr.get(ctx, tr.h1)
	tr.list(ctx, tr.h1)
	tr.patch(ctx)
	for _, pod := range r.targets {
		for _, websocket := range []bool{true, false} {
			tr.record(ctx, kindExec, tr.execOnce(ctx, pod, websocket))
			tr.record(ctx, kindPortForward, tr.forwardOnce(ctx, pod, websocket))
		}
	}
	rc, transport, err := r.exchangeClient()
	if err != nil {
		return err
	}
	defer transport.CloseIdleConnections()
	token, err := r.idToken(ctx)
	tr.record(ctx, kindSignIn, err)
	if err == nil {
		_ = tr.exchangeOnce(ctx, rc, token, false)
		_ = tr.exchangeOnce(ctx, rc, token, true)
	}
	snap := tl.snapshot()
	var errs []error
	for key, n := range snap.failed {
		errs = append(errs, fmt.Errorf("%s: %d× %s: %s", key.kind, n, key.cause, snap.example[key]))
	}
	return errors.Join(errs...)
}

// sample reads kip's state now and keeps it.
func (s *soak) sample(ctx context.Context, stage string) sample {
	now := time.Now()
	rss, goroutines, fds := s.probe.read(ctx)
	served, failed := s.tally.totals()
	smp := sample{at: now, stage: stage, rss: rss, goroutines: goroutines, fds: fds,
		served: served, failed: failed, restarting: s.tally.restarting(now)}
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
	return smp
}

// measureBaseline closes the clients' connections and samples kip at
// rest, before the load.
func (s *soak) measureBaseline(ctx context.Context, tr *traffic) {
	tr.closeAll()
	for range 3 {
		pause(ctx, 5*time.Second)
		s.sample(ctx, "baseline")
	}
	b := s.baseline()
	s.log("baseline: RSS %s, %d goroutines, %d open fds", mib(b.rss), b.goroutines, b.fds)
}

// baseline is the last sample before the load.
func (s *soak) baseline() sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b sample
	for _, smp := range s.samples {
		if smp.stage == "baseline" {
			b = smp
		}
	}
	return b
}

// runLoad sends the traffic for the soak's duration, samples kip every
// sampleEvery and restarts the upstream every restartEvery. It ends early
// if kip exits.
func (s *soak) runLoad(parent context.Context, tr *traffic) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.duration)
	defer cancel()
	s.loadStart = time.Now()
	s.log("load for %s, upstream restarts every %s", s.cfg.duration, s.cfg.restartEvery)
	var wg sync.WaitGroup
	wg.Go(func() { s.sampleLoop(ctx) })
	wg.Go(func() { s.restartLoop(ctx) })
	wg.Go(func() {
		select {
		case <-s.r.kip.Exited():
			s.mu.Lock()
			s.kipExited = fmt.Errorf("kip exited during the soak (%v): %s", s.r.kip.Err(), s.r.kip.LogTail())
			s.mu.Unlock()
			cancel()
		case <-ctx.Done():
		}
	})
	tr.run(ctx)
	cancel()
	wg.Wait()
	s.loadEnd = time.Now()
	s.sample(parent, "load")
}

func (s *soak) sampleLoop(ctx context.Context) {
	s.sample(ctx, "load")
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		smp := s.sample(ctx, "load")
		if n%6 == 0 {
			s.log("%s: %d served, %d failed; kip RSS %s, %d goroutines, %d open fds",
				time.Since(s.loadStart).Round(time.Second), smp.served, smp.failed, mib(smp.rss), smp.goroutines, smp.fds)
		}
	}
}

// restartLoop restarts kube-apiserver at every multiple of restartEvery
// from the start of the load, unless less than a minute of load would be
// left after it to see every kind of request served again.
func (s *soak) restartLoop(ctx context.Context) {
	if s.cfg.restartEvery == 0 {
		return
	}
	for k := 1; ; k++ {
		at := time.Duration(k) * s.cfg.restartEvery
		if at > s.cfg.duration-time.Minute {
			return
		}
		pause(ctx, time.Until(s.loadStart.Add(at)))
		if ctx.Err() != nil {
			return
		}
		began := time.Now()
		s.tally.restartBegins(began)
		err := s.r.restartUpstream()
		s.tally.restartEnds(time.Now(), err)
		if err != nil {
			s.log("restart %d failed: %v", k, err)
			return
		}
		s.log("restart %d: kube-apiserver down and ready again in %s", k, time.Since(began).Round(100*time.Millisecond))
	}
}

// waitForRelease closes every client connection, then samples kip until
// its goroutines are back within goroutineAllowance of the baseline, for
// at least 30 seconds and at most two minutes.
func (s *soak) waitForRelease(ctx context.Context, tr *traffic) {
	tr.closeAll()
	base := s.baseline().goroutines
	stop := time.Now().Add(2 * time.Minute)
	for n := 1; ; n++ {
		pause(ctx, sampleEvery)
		smp := s.sample(ctx, "after")
		back := smp.goroutines >= 0 && smp.goroutines <= goroutineAllowance(base)
		if (back && n >= 3) || time.Now().After(stop) {
			s.log("after the load: RSS %s, %d goroutines (baseline %d), %d open fds", mib(smp.rss), smp.goroutines, base, smp.fds)
			return
		}
	}
}

// goroutineAllowance is how many goroutines kip may run after the load
// and still count as back at its baseline: its upstream connection pools
// and informers vary by a handful from moment to moment.
func goroutineAllowance(base int64) int64 {
	return base + max(20, base/10)
}

func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
