package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/childproc"
)

// routedClusters is how many clusters the routed gateway fronts.
const routedClusters = 3

// GatewayRouting sets a gateway kip fronting three clusters beside a
// single-cluster kip, both fresh and with the same flags, for the small
// GET at concurrency 32. The gateway's requests take its clusters in turn;
// all three are the rig's kube-apiserver under different names, so the
// difference is kip's routing and its three backends.
func GatewayRouting(ctx context.Context, env Env) (_ *results.Gateway, setup []string, err error) {
	single, stopSingle, err := env.Rig.StartSingleKip(ctx, "kip-single")
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, stopSingle()) }()
	names := rig.ClusterNames("routed", 1, routedClusters)
	gw, err := env.Rig.StartGateway(ctx, rig.GatewayOptions{Name: "kip-gateway", Clusters: names, Wait: true})
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, gw.Stop()) }()
	single.Name = "kip"
	prefixes := map[*load.Target][]string{single: {""}, gw.Target: {}}
	for _, n := range names {
		prefixes[gw.Target] = append(prefixes[gw.Target], rig.ClusterPath(n, ""))
	}
	var turn atomic.Uint64
	send := func(ctx context.Context, t *load.Target) error {
		p := prefixes[t]
		_, err := load.Get(ctx, t, p[turn.Add(1)%uint64(len(p))]+rig.SmallPath, nil)
		return err
	}
	const c = 32
	env.logf("gateway routing: small GET, concurrency %d, %d requests per target", c, env.Sizes.GetRequests)
	res := requestRun{
		targets:     []*load.Target{single, gw.Target},
		upstreamPID: env.Rig.APIServerPID,
		path:        rig.SmallPath,
		concurrency: c,
		requests:    env.Sizes.GetRequests,
		rounds:      env.Sizes.Rounds,
		send:        send,
	}.run(ctx)
	setup = []string{
		fmt.Sprintf("kip (routing): a fresh single-cluster `kip serve` (pid %d), the same flags as kip above", single.PID),
		fmt.Sprintf("kip-gateway: `kip serve --clusters-dir` (pid %d) with %d entries, each kip's kubeconfig for the one kube-apiserver under another name, the same flags otherwise (--trust-cluster-client-ca left at its default, true); its requests take /clusters/<name>/ in turn", gw.Target.PID, routedClusters),
	}
	return &results.Gateway{Clusters: routedClusters, Routing: res}, setup, nil
}

// baselineClusters is the size of the registry the large one is set
// beside: one entry, so that kip runs as a gateway.
const baselineClusters = 1

// GatewayRegistry measures a gateway kip with Sizes.GatewayClusters
// entries, all idle and lazy (--trust-cluster-client-ca=false, so that
// registering a cluster contacts nothing), beside one with a single entry:
// startup, RSS and upstream connections. Then, on the large one, one
// request through one cluster, and Sizes.Rounds of each change to the
// directory, timed until kip's answers show it.
func GatewayRegistry(ctx context.Context, env Env) (_ *results.Registry, setup []string, err error) {
	n := env.Sizes.GatewayClusters
	reg := &results.Registry{Clusters: n, BaselineClusters: baselineClusters}
	base, gw, err := startIdleGateway(ctx, env, "kip-registry-small", rig.ClusterNames("idle", 0, baselineClusters))
	if gw != nil {
		err = errors.Join(err, gw.Stop())
	}
	if err != nil {
		return nil, nil, err
	}
	reg.BaselineStartupSeconds, reg.BaselineRSS, reg.BaselineConnections = base.startup, base.rss, base.conns
	names := rig.ClusterNames("idle", 0, n)
	large, gw, err := startIdleGateway(ctx, env, "kip-registry", names)
	if gw != nil {
		defer func() { err = errors.Join(err, gw.Stop()) }()
	}
	if err != nil {
		return nil, nil, err
	}
	reg.StartupSeconds, reg.RSS, reg.Connections = large.startup, large.rss, large.conns
	reg.RSSPerCluster = float64(reg.RSS-reg.BaselineRSS) / float64(n-baselineClusters)
	setup = []string{fmt.Sprintf("kip-registry: `kip serve --clusters-dir --trust-cluster-client-ca=false --client-ca-file` (pid %d) with %d entries, each kip's kubeconfig for the one kube-apiserver under another name; kip-registry-small the same with %d", gw.Target.PID, n, baselineClusters)}

	if _, err := load.Get(ctx, gw.Target, rig.ClusterPath(names[n/2], "/version"), nil); err != nil {
		return reg, setup, fmt.Errorf("first request through %s: %w", names[n/2], err)
	}
	if reg.AfterFirstUse, err = upstreamConnections(gw.Target.PID, gw.APIServerPort); err != nil {
		return reg, setup, err
	}
	env.logf("gateway registry: %d of each change", env.Sizes.Rounds)
	reg.Changes, err = timeChanges(ctx, gw, env.Sizes.Rounds)
	if err != nil {
		reg.FirstError = err.Error()
	}
	return reg, setup, err
}

// idleState is a gateway kip after start, with nothing served.
type idleState struct {
	startup float64
	rss     int64
	conns   int
}

// startIdleGateway starts a lazy gateway kip on clusters, times it from
// the process's start to /readyz answering 200 (polled every 5 ms), then
// forces a GC and lets memory settle before reading RSS and counting
// kip's connections to kube-apiserver. The gateway is returned running.
func startIdleGateway(ctx context.Context, env Env, name string, clusters []string) (idleState, *rig.Gateway, error) {
	env.logf("gateway registry: kip with %d clusters", len(clusters))
	gw, err := env.Rig.NewGateway(rig.GatewayOptions{Name: name, Clusters: clusters, Lazy: true})
	if err != nil {
		return idleState{}, nil, err
	}
	started := time.Now()
	if err := gw.Start(ctx); err != nil {
		return idleState{}, gw, err
	}
	if err := poll(ctx, readyTimeout, func(ctx context.Context) (bool, error) {
		return childproc.GetOK(ctx, http.DefaultClient, gw.ProbeURL+"/readyz") == nil, nil
	}); err != nil {
		return idleState{}, gw, fmt.Errorf("%s never ready: %w; %s", name, err, gw.LogTail())
	}
	s := idleState{startup: time.Since(started).Seconds()}
	// The heap profile's gc=1 runs a collection first: what is measured is
	// what the registry holds, not what loading it left behind.
	if err := childproc.GetOK(ctx, http.DefaultClient, gw.ProbeURL+"/debug/pprof/heap?gc=1"); err != nil {
		return s, gw, err
	}
	sleep(ctx, 2*env.Sizes.Settle)
	s.rss = rss(gw.Target.PID)
	s.conns, err = upstreamConnections(gw.Target.PID, gw.APIServerPort)
	return s, gw, err
}

// readyTimeout bounds a wait for kip, or for a change to show.
const readyTimeout = time.Minute

// changeTimeout bounds the wait for one change to be applied.
const changeTimeout = 10 * time.Second

// change is one edit of the directory and the answer that shows kip
// applied it.
type change struct {
	kind  string
	apply func(g *rig.Gateway, name string) error
	until func(status int) bool
}

var changes = []change{
	{"add a cluster (until it answers 200)",
		func(g *rig.Gateway, name string) error { return g.WriteEntry(name, true) },
		func(s int) bool { return s == http.StatusOK }},
	{"rotate it to a dead address (until it stops answering 200)",
		func(g *rig.Gateway, name string) error { return g.WriteEntry(name, false) },
		func(s int) bool { return s != http.StatusOK }},
	{"rotate it back (until it answers 200)",
		func(g *rig.Gateway, name string) error { return g.WriteEntry(name, true) },
		func(s int) bool { return s == http.StatusOK }},
	{"remove it (until it answers 404)",
		func(g *rig.Gateway, name string) error { return g.RemoveEntry(name) },
		func(s int) bool { return s == http.StatusNotFound }},
}

// timeChanges adds, rotates twice and removes a new cluster, rounds
// times, polling GET /clusters/<name>/version every 5 ms after each
// change until the answer shows it.
func timeChanges(ctx context.Context, g *rig.Gateway, rounds int) ([]results.Change, error) {
	out := make([]results.Change, len(changes))
	for i, c := range changes {
		out[i].Kind = c.kind
	}
	for round := range rounds {
		name := fmt.Sprintf("added-%04d", round)
		for i, c := range changes {
			start := time.Now()
			if err := c.apply(g, name); err != nil {
				return out, err
			}
			if err := poll(ctx, changeTimeout, func(ctx context.Context) (bool, error) {
				s, err := status(ctx, g.Target, rig.ClusterPath(name, "/version"))
				return err == nil && c.until(s), nil
			}); err != nil {
				return out, fmt.Errorf("%s, %s: %w", c.kind, name, err)
			}
			out[i].Seconds = append(out[i].Seconds, time.Since(start).Seconds())
		}
	}
	for i := range out {
		out[i].Median, out[i].Max = medianAndMax(out[i].Seconds)
	}
	return out, nil
}

// poll calls done every 5 ms until it says so, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		probeCtx, cancelProbe := context.WithTimeout(ctx, 2*time.Second)
		ok, err := done(probeCtx)
		cancelProbe()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// status is the status code of a GET of path on t.
func status(ctx context.Context, t *load.Target, path string) (int, error) {
	req, err := t.NewRequest(ctx, path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func medianAndMax(v []float64) (median, maximum float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2], s[len(s)-1]
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
