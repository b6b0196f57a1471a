package rig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// Gateway is a `kip serve --clusters-dir` process whose directory the
// benchmark writes: every entry is kip's own kubeconfig for the rig's one
// kube-apiserver, under a name of its own, so that a thousand clusters
// cost one API server.
type Gateway struct {
	// Target reaches kip itself: paths go under /clusters/<name>.
	Target *load.Target
	// ProbeURL serves /readyz and /debug/pprof.
	ProbeURL string
	// Dir holds one kubeconfig per cluster.
	Dir string
	// APIServerPort is kube-apiserver's port, which tells kip's upstream
	// connections from its others.
	APIServerPort int

	kip          *harness.Kip
	entry, wrong []byte
	rig          *Rig
	opts         GatewayOptions
}

// GatewayOptions says how to start a gateway kip.
type GatewayOptions struct {
	// Name names the process and its log; Clusters are the entries written
	// before it starts.
	Name     string
	Clusters []string
	// Lazy runs kip with --trust-cluster-client-ca=false and the bench
	// user's CA from a file, so that registering a cluster reads nothing
	// from it: its backend is built on first use. Otherwise kip watches
	// every cluster's client-CA ConfigMap from the start.
	Lazy bool
	// Wait makes Start return once the bench user can read SmallPath
	// through the first cluster; without it Start returns as soon as the
	// process runs.
	Wait bool
}

// NewGateway writes the entries into a fresh directory; Start starts kip
// on it with the rig's kip flags. Stop it before the next workload.
func (r *Rig) NewGateway(opts GatewayOptions) (*Gateway, error) {
	entry, err := os.ReadFile(r.Stack.UpstreamKubeconfig)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(r.Stack.Cluster.URL)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver URL %s has no port: %w", r.Stack.Cluster.URL, err)
	}
	// The wrong entry is the same credentials for a port nothing listens
	// on: what a rotation to a dead address looks like.
	wrong := bytes.ReplaceAll(entry, []byte(r.Stack.Cluster.URL), []byte("https://127.0.0.1:1"))
	if bytes.Equal(wrong, entry) {
		return nil, fmt.Errorf("%s does not name %s", r.Stack.UpstreamKubeconfig, r.Stack.Cluster.URL)
	}
	dir := r.path(opts.Name + "-clusters")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	gw := &Gateway{Dir: dir, APIServerPort: port, entry: entry, wrong: wrong, rig: r, opts: opts}
	for _, name := range opts.Clusters {
		if err := gw.WriteEntry(name, true); err != nil {
			return nil, err
		}
	}
	return gw, nil
}

// StartGateway is NewGateway, then Start.
func (r *Rig) StartGateway(ctx context.Context, opts GatewayOptions) (*Gateway, error) {
	gw, err := r.NewGateway(opts)
	if err != nil {
		return nil, err
	}
	return gw, gw.Start(ctx)
}

// Start runs kip; with Wait, until the first cluster serves the bench
// user.
func (g *Gateway) Start(ctx context.Context) error { return g.rig.startGatewayKip(ctx, g, g.opts) }

func (r *Rig) startGatewayKip(ctx context.Context, gw *Gateway, opts GatewayOptions) error {
	tlsConfig, err := r.userTLS(r.Stack.KipCAPEM)
	if err != nil {
		return err
	}
	args := append(kipWatchArgs(), "--clusters-dir="+gw.Dir)
	if opts.Lazy {
		args = append(args, "--trust-cluster-client-ca=false", "--client-ca-file="+r.clientCAFile)
	}
	ready := harness.Started
	if opts.Wait && len(opts.Clusters) > 0 {
		ready = func(ctx context.Context, _ *harness.Kip) error {
			_, err := load.Get(ctx, gw.Target, ClusterPath(opts.Clusters[0], SmallPath), nil)
			return err
		}
	}
	k, err := harness.NewKip(harness.KipOptions{
		Name: opts.Name, Binary: r.opts.Binaries.Kip, Stack: r.Stack,
		Args: append(args, r.opts.KipFlags...), Env: r.opts.KipEnv, Dir: r.opts.Dir,
		Ready: ready, ReadyTimeout: readyTimeout,
	})
	if err != nil {
		return err
	}
	gw.kip, gw.ProbeURL = k, k.ProbeURL
	gw.Target = load.NewTarget(opts.Name, k.URL, tlsConfig, 0)
	if err := k.Start(ctx); err != nil {
		return err
	}
	gw.Target.PID = k.Pid()
	return nil
}

// StartSingleKip starts a single-cluster kip like the rig's own, fresh,
// to set beside a gateway; stop stops it.
func (r *Rig) StartSingleKip(ctx context.Context, name string) (_ *load.Target, stop func() error, err error) {
	var g group
	t, _, err := r.startKip(ctx, &g, name, r.Stack.UpstreamKubeconfig, kipWatchArgs())
	if err != nil {
		return nil, nil, errors.Join(err, g.stop())
	}
	return t, g.stop, nil
}

// ClusterPath is path on the cluster called name, through a gateway.
func ClusterPath(name, path string) string { return "/clusters/" + name + path }

// ClusterNames are n cluster names, numbered from first.
func ClusterNames(prefix string, first, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%04d", prefix, first+i)
	}
	return names
}

// WriteEntry writes the cluster called name, pointing at kube-apiserver,
// or at a dead port when reachable is false. The file appears whole, by
// rename: a dotfile, which kip skips, is written first.
func (g *Gateway) WriteEntry(name string, reachable bool) error {
	data := g.entry
	if !reachable {
		data = g.wrong
	}
	tmp := filepath.Join(g.Dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(g.Dir, name))
}

// RemoveEntry removes the cluster called name.
func (g *Gateway) RemoveEntry(name string) error {
	return os.Remove(filepath.Join(g.Dir, name))
}

// Stop stops kip.
func (g *Gateway) Stop() error {
	if g.kip == nil {
		return nil
	}
	return g.kip.Stop(10 * time.Second)
}

// LogTail is the end of kip's log, for errors.
func (g *Gateway) LogTail() string { return g.kip.LogTail() }
