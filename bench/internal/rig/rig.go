package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/rig/procstat"
)

// Options configures Start.
type Options struct {
	// RepoRoot is the kip checkout; Dir receives logs and credentials.
	RepoRoot, Dir string
	Binaries      Binaries
	Log           io.Writer
	// Extras are more targets to measure beside direct, kip and kubectl
	// proxy; Start waits up to ExtrasWait for them to answer.
	Extras     []TargetSpec
	ExtrasWait time.Duration
	// KipFlags are added to every `kip serve` the rig starts, after its own
	// flags; KipEnv are added to its environment (GOGC=200, GODEBUG=…), for
	// trying a change without rebuilding.
	KipFlags, KipEnv []string
}

// Rig is a running cluster with every target in front of it.
type Rig struct {
	Stack        *devstack.Stack
	Admin        kubernetes.Interface
	APIServerPID int
	// Targets are direct, kip, kubectl-proxy and the extras, in that order.
	Targets []*load.Target
	// Baselines split the way from direct to kip into steps, for the small
	// GET: direct-user is the user kip impersonates, sent directly, which
	// costs RBAC and priority and fairness where direct is an exempt admin;
	// direct-impersonating is kip's own credential with the impersonation
	// headers kip would send, which adds what impersonation costs
	// kube-apiserver. What kip adds beyond that is kip's.
	Baselines []*load.Target
	// KipProbeURL serves kip's /debug/pprof.
	KipProbeURL string
	// Setup describes how each target runs, for the report.
	Setup []string

	opts         Options
	user         credential
	clientCAFile string
	procs        group
}

// credential is a client certificate and its key, in PEM form.
type credential struct{ cert, key []byte }

// Start brings up the cluster and the standing targets. On error,
// whatever started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Rig, err error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	stack, err := devstack.Start(ctx, devstack.Options{RepoRoot: opts.RepoRoot, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	r := &Rig{Stack: stack, opts: opts}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Stop())
		}
	}()
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	if err := r.startTargets(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// prepare finds kube-apiserver, creates the fixtures every workload shares
// and the bench user's credentials.
func (r *Rig) prepare(ctx context.Context) error {
	var err error
	if r.Admin, err = kubernetes.NewForConfig(r.Stack.Cluster.AdminConfig); err != nil {
		return err
	}
	if r.APIServerPID, err = procstat.FindChild(os.Getpid(), "kube-apiserver"); err != nil {
		return fmt.Errorf("finding kube-apiserver to measure it: %w", err)
	}
	if err := createFixtures(ctx, r.Admin); err != nil {
		return err
	}
	if r.user.cert, r.user.key, err = r.Stack.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: User}); err != nil {
		return err
	}
	if _, _, err = pki.WriteFiles(r.opts.Dir, "bench-user", r.user.cert, r.user.key); err != nil {
		return err
	}
	r.clientCAFile, _, err = pki.WriteFiles(r.opts.Dir, "client-ca", r.Stack.Cluster.ClientCA.CertPEM, nil)
	return err
}

func (r *Rig) startTargets(ctx context.Context) error {
	direct, err := r.directTarget()
	if err != nil {
		return err
	}
	kip, probe, err := r.startKip(ctx, &r.procs, "kip", r.Stack.UpstreamKubeconfig, kipWatchArgs())
	if err != nil {
		return err
	}
	r.KipProbeURL = probe
	kubectl, err := r.startKubectlProxy(ctx, &r.procs, "kubectl-proxy", r.Stack.Cluster.AdminKubeconfig)
	if err != nil {
		return err
	}
	r.Targets = []*load.Target{direct, kip, kubectl}
	if r.Baselines, err = r.baselineTargets(); err != nil {
		return err
	}
	r.Setup = append(r.Setup,
		"direct: kube-apiserver "+r.Stack.Cluster.URL+", admin client certificate (system:masters), HTTP/2",
		"direct-user (small GET only): kube-apiserver directly with the client certificate of "+User+", the user kip impersonates, HTTP/2",
		"direct-impersonating (small GET only): kube-apiserver directly with kip's own client certificate ("+devstack.KipUser+") and the Impersonate-* headers kip sends for "+User+", HTTP/2",
		fmt.Sprintf("kip: `kip serve` process (pid %d), client certificate for user %s, HTTP/2, flags %v, environment %v", kip.PID, User, append(kipWatchArgs(), r.opts.KipFlags...), r.opts.KipEnv),
		fmt.Sprintf("kubectl-proxy: `kubectl proxy` process (pid %d) with the admin kubeconfig, plain HTTP/1.1 on loopback", kubectl.PID),
	)
	extras, err := r.startExtras(ctx)
	if err != nil {
		return err
	}
	r.Targets = append(r.Targets, extras...)
	return nil
}

// kipWatchArgs raise kip's HTTP/2 stream limit so that thousands of
// watches can share one connection.
func kipWatchArgs() []string {
	return []string{"--http2-max-streams-per-connection=10000"}
}

// Target returns the target called name, or nil.
func (r *Rig) Target(name string) *load.Target {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Stop stops the proxies, then the cluster.
func (r *Rig) Stop() error {
	err := r.procs.stop()
	if r.Stack != nil {
		err = errors.Join(err, r.Stack.Stop())
	}
	return err
}

// path returns name inside the rig's directory.
func (r *Rig) path(name string) string { return filepath.Join(r.opts.Dir, name) }

// group is processes stopped together: kips and the other proxies.
type group struct{ procs []stopper }

type stopper interface {
	Stop(grace time.Duration) error
}

func (g *group) add(p stopper) { g.procs = append(g.procs, p) }

func (g *group) stop() error {
	var err error
	for _, p := range g.procs {
		err = errors.Join(err, p.Stop(10*time.Second))
	}
	g.procs = nil
	return err
}
