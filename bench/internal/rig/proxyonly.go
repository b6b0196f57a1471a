package rig

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// ProxyOnly is a trivial upstream with proxies in front of it, so that the
// proxies' own cost is measured without kube-apiserver's.
type ProxyOnly struct {
	// Targets are direct (the trivial upstream itself), reverse-proxy, kip
	// and kubectl-proxy.
	Targets []*load.Target
	Setup   []string
	// KipProbeURL serves the proxy-only kip's /debug/pprof.
	KipProbeURL string

	upstream *trivialUpstream
	procs    group
}

// StartProxyOnly starts the trivial upstream, serving body for every GET,
// and the proxies in front of it. Stop it before the next workload.
func (r *Rig) StartProxyOnly(ctx context.Context, body []byte) (_ *ProxyOnly, err error) {
	certPEM, keyPEM, err := r.Stack.ServingCA.IssueServing([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	up, err := startTrivialUpstream(certPEM, keyPEM, body)
	if err != nil {
		return nil, err
	}
	p := &ProxyOnly{upstream: up}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Stop())
		}
	}()
	direct, err := r.trivialDirect(up.URL)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := r.trivialKubeconfig(up.URL)
	if err != nil {
		return nil, err
	}
	targets, err := r.startProxiesFor(ctx, p, up.URL, kubeconfig)
	if err != nil {
		return nil, err
	}
	p.Targets = append([]*load.Target{direct}, targets...)
	return p, nil
}

func (r *Rig) trivialDirect(url string) (*load.Target, error) {
	tlsConfig, err := r.userTLS(r.Stack.ServingCA.CertPEM)
	if err != nil {
		return nil, err
	}
	return load.NewTarget("direct", url, tlsConfig, 0), nil
}

// trivialKubeconfig points a proxy at the trivial upstream. The upstream
// checks no credentials; the certificate is there because kip wants some.
func (r *Rig) trivialKubeconfig(url string) (string, error) {
	cert, key, err := r.Stack.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: devstack.KipUser})
	if err != nil {
		return "", err
	}
	path := r.path("trivial-upstream.kubeconfig")
	return path, localcluster.WriteKubeconfig(path, url, r.Stack.ServingCA.CertPEM, cert, key)
}

// startProxiesFor starts the bare reverse proxy, kip and kubectl proxy in
// front of upstreamURL. Their processes join p, not the rig.
func (r *Rig) startProxiesFor(ctx context.Context, p *ProxyOnly, upstreamURL, kubeconfig string) ([]*load.Target, error) {
	rp, err := r.startReverseProxy(ctx, &p.procs, upstreamURL)
	if err != nil {
		return nil, err
	}
	// The trivial upstream has no client-CA ConfigMap: kip trusts the
	// bench user's CA from a file instead.
	kip, probe, err := r.startKip(ctx, &p.procs, "kip-proxy-only", kubeconfig, []string{
		"--trust-cluster-client-ca=false", "--client-ca-file=" + r.clientCAFile,
	})
	if err != nil {
		return nil, err
	}
	kip.Name = "kip"
	p.KipProbeURL = probe
	kubectl, err := r.startKubectlProxy(ctx, &p.procs, "kubectl-proxy-proxy-only", kubeconfig)
	if err != nil {
		return nil, err
	}
	kubectl.Name = "kubectl-proxy"
	p.Setup = []string{
		"direct: the trivial upstream itself (in the benchmark process, HTTP/2, TLS), not a separate process",
		fmt.Sprintf("reverse-proxy: bare httputil.ReverseProxy process (pid %d), TLS in and out, HTTP/2 both sides, client certificate required", rp.PID),
		fmt.Sprintf("kip: `kip serve` process (pid %d), --trust-cluster-client-ca=false --client-ca-file", kip.PID),
		fmt.Sprintf("kubectl-proxy: `kubectl proxy` process (pid %d), plain HTTP/1.1 in, HTTP/2 out", kubectl.PID),
	}
	return []*load.Target{rp, kip, kubectl}, nil
}

func (r *Rig) startReverseProxy(ctx context.Context, g *group, upstreamURL string) (*load.Target, error) {
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	caFile, _, err := pki.WriteFiles(r.opts.Dir, "serving-ca", r.Stack.ServingCA.CertPEM, nil)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--listen=127.0.0.1:" + strconv.Itoa(ports[0]),
		"--upstream=" + upstreamURL, "--upstream-ca=" + caFile,
		"--cert=" + r.Stack.ServingCertFile, "--key=" + r.Stack.ServingKeyFile,
		"--client-ca=" + r.clientCAFile,
	}
	proc, err := childproc.Start("reverse-proxy", r.opts.Binaries.ReverseProxy, args, nil, r.path("reverse-proxy.log"))
	if err != nil {
		return nil, err
	}
	g.add(proc)
	tlsConfig, err := r.userTLS(r.Stack.KipCAPEM)
	if err != nil {
		return nil, err
	}
	t := load.NewTarget("reverse-proxy", "https://127.0.0.1:"+strconv.Itoa(ports[0]), tlsConfig, proc.Pid())
	return t, waitReady(ctx, t, proc)
}

// Stop stops the proxies and the trivial upstream.
func (p *ProxyOnly) Stop() error {
	return errors.Join(p.procs.stop(), p.upstream.stop())
}
