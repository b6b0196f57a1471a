package workload

import (
	"context"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
)

// Concurrencies of the GET workloads: one caller, and a busy controller.
var Concurrencies = []int{1, 32}

// SmallGet reads one small ConfigMap through every target and the
// baselines, at each concurrency.
func SmallGet(ctx context.Context, env Env) []results.Load {
	targets := append(append([]*load.Target{env.Rig.Targets[0]}, env.Rig.Baselines...), env.Rig.Targets[1:]...)
	var out []results.Load
	for _, c := range Concurrencies {
		env.logf("small GET, concurrency %d, %d requests per target", c, requestsAt(env.Sizes.GetRequests, c))
		out = append(out, requestRun{
			targets:     targets,
			upstreamPID: env.Rig.APIServerPID,
			path:        rig.SmallPath,
			concurrency: c,
			requests:    requestsAt(env.Sizes.GetRequests, c),
			rounds:      env.Sizes.Rounds,
		}.run(ctx)...)
	}
	return out
}

// requestsAt scales the request count down for one caller, whose requests
// take as long each but come one at a time.
func requestsAt(requests, concurrency int) int {
	if concurrency == 1 {
		return max(requests/5, 1)
	}
	return requests
}
