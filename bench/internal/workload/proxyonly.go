package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
)

// ProxyOnly runs the small GET against a trivial upstream that answers with
// the very bytes kube-apiserver sends for the small ConfigMap, so what is
// measured is the proxies alone. setup describes the targets; the profile,
// when the sizes ask for profiles, is kip's CPU at concurrency 32.
func ProxyOnly(ctx context.Context, env Env) (res []results.Load, setup []string, profiles []results.Profile, err error) {
	direct := env.Rig.Target("direct")
	body, err := rawGet(ctx, direct, rig.SmallPath)
	if err != nil {
		return nil, nil, nil, err
	}
	group, err := env.Rig.StartProxyOnly(ctx, body)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() { err = errors.Join(err, group.Stop()) }()
	for _, c := range Concurrencies {
		env.logf("proxy-only GET, concurrency %d, %d requests per target", c, requestsAt(env.Sizes.ProxyRequests, c))
		res = append(res, requestRun{
			targets:     group.Targets,
			path:        rig.SmallPath,
			concurrency: c,
			requests:    requestsAt(env.Sizes.ProxyRequests, c),
			rounds:      env.Sizes.Rounds,
		}.run(ctx)...)
	}
	if env.Sizes.ProfileSeconds > 0 {
		profiles, err = profileProxyOnly(ctx, env, group)
	}
	return res, group.Setup, profiles, err
}

// profileProxyOnly profiles kip alone, with nothing behind it but the
// trivial upstream, so that its own work is all the profile shows.
func profileProxyOnly(ctx context.Context, env Env, group *rig.ProxyOnly) ([]results.Profile, error) {
	const c = 32
	about := fmt.Sprintf("the proxy-only GET through kip at concurrency %d", c)
	var kip *load.Target
	for _, t := range group.Targets {
		if t.Name == "kip" {
			kip = t
		}
	}
	source := profileSource{who: "kip", client: http.DefaultClient, base: group.KipProbeURL}
	env.logf("profiling for %ds under %s", env.Sizes.ProfileSeconds, about)
	return whileLoaded(ctx, env, env.Sizes.ProfileSeconds, func(ctx context.Context) {
		load.Run(ctx, load.Batch{Target: kip, Path: rig.SmallPath, Concurrency: c, Requests: 1 << 30})
	}, []cpuCapture{
		{source: source, name: fmt.Sprintf("kip CPU, proxy-only c=%d", c), about: about, file: fmt.Sprintf("kip-cpu-proxy-only-c%d.pprof", c)},
		{source: source, name: fmt.Sprintf("kip allocations, proxy-only c=%d", c), about: about, file: fmt.Sprintf("kip-allocs-proxy-only-c%d.pprof", c), allocs: true},
	})
}

// rawGet returns the body of a GET of path on t.
func rawGet(ctx context.Context, t *load.Target, path string) ([]byte, error) {
	req, err := t.NewRequest(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, err
}
