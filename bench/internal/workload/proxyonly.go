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
// measured is the proxies alone. setup describes the targets.
func ProxyOnly(ctx context.Context, env Env) (res []results.Load, setup []string, err error) {
	direct := env.Rig.Target("direct")
	body, err := rawGet(ctx, direct, rig.SmallPath)
	if err != nil {
		return nil, nil, err
	}
	group, err := env.Rig.StartProxyOnly(ctx, body)
	if err != nil {
		return nil, nil, err
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
	return res, group.Setup, nil
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
