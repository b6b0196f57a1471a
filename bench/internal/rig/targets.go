package rig

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// readyTimeout bounds how long a proxy may take to answer its first GET.
const readyTimeout = 60 * time.Second

func (r *Rig) directTarget() (*load.Target, error) {
	tlsConfig, err := rest.TLSConfigFor(r.Stack.Cluster.AdminConfig)
	if err != nil {
		return nil, err
	}
	return load.NewTarget("direct", r.Stack.Cluster.URL, tlsConfig, 0), nil
}

func (r *Rig) baselineTargets() ([]*load.Target, error) {
	userTLS, err := r.userTLS(r.Stack.Cluster.ServingCAPEM)
	if err != nil {
		return nil, err
	}
	cert, key, err := r.Stack.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: devstack.KipUser})
	if err != nil {
		return nil, err
	}
	kipTLS, err := rest.TLSConfigFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{
		CAData: r.Stack.Cluster.ServingCAPEM, CertData: cert, KeyData: key,
	}})
	if err != nil {
		return nil, err
	}
	impersonating := load.NewTarget("direct-impersonating", r.Stack.Cluster.URL, kipTLS, 0)
	if impersonating.Header, err = impersonationHeaders(r.user.cert); err != nil {
		return nil, err
	}
	return []*load.Target{load.NewTarget("direct-user", r.Stack.Cluster.URL, userTLS, 0), impersonating}, nil
}

// impersonationHeaders are what kip sends upstream for the bench user: the
// name and the credential ID that kube-apiserver's x509 authenticator (the
// one kip uses too) derives from the certificate. The bench user has no
// group of its own, and kube-apiserver adds system:authenticated itself.
func impersonationHeaders(certPEM []byte) (http.Header, error) {
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cert.Raw)
	return http.Header{
		"Impersonate-User": {User},
		"Impersonate-Extra-Authentication.kubernetes.io%2fcredential-Id": {"X509SHA256=" + hex.EncodeToString(sum[:])},
	}, nil
}

// userTLS is a client TLS configuration for the bench user that trusts
// caPEM for the server.
func (r *Rig) userTLS(caPEM []byte) (*tls.Config, error) {
	return rest.TLSConfigFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{
		CAData: caPEM, CertData: r.user.cert, KeyData: r.user.key,
	}})
}

// UserConfig is a client configuration for the bench user through kip, for
// what the benchmark does with client-go rather than its own clients.
func (r *Rig) UserConfig() *rest.Config { return r.UserConfigFor(r.Target("kip")) }

// UserConfigFor is UserConfig through the kip behind t.
func (r *Rig) UserConfigFor(t *load.Target) *rest.Config {
	return &rest.Config{Host: t.URL, TLSClientConfig: rest.TLSClientConfig{
		CAData: r.Stack.KipCAPEM, CertData: r.user.cert, KeyData: r.user.key,
	}}
}

// startKip runs `kip serve` with the stack's flags, kubeconfig as its
// upstream and extra flags after them, adds it to g, and waits until the
// bench user can read SmallPath through it.
func (r *Rig) startKip(ctx context.Context, g *group, name, kubeconfig string, extra []string) (*load.Target, string, error) {
	tlsConfig, err := r.userTLS(r.Stack.KipCAPEM)
	if err != nil {
		return nil, "", err
	}
	var t *load.Target
	k, err := harness.NewKip(harness.KipOptions{
		Name: name, Binary: r.opts.Binaries.Kip, Stack: r.Stack, Kubeconfig: kubeconfig,
		Args: append(append([]string(nil), extra...), r.opts.KipFlags...), Env: r.opts.KipEnv, Dir: r.opts.Dir,
		Ready: func(ctx context.Context, _ *harness.Kip) error {
			_, err := load.Get(ctx, t, SmallPath, nil)
			return err
		},
		ReadyTimeout: readyTimeout,
	})
	if err != nil {
		return nil, "", err
	}
	t = load.NewTarget(name, k.URL, tlsConfig, 0)
	g.add(k)
	if err := k.Start(ctx); err != nil {
		return nil, "", err
	}
	t.PID = k.Pid()
	return t, k.ProbeURL, nil
}

// startKubectlProxy runs `kubectl proxy` with kubeconfig: a plain forwarder
// that adds the kubeconfig's credentials, a baseline for the cost of any
// proxy in between.
func (r *Rig) startKubectlProxy(ctx context.Context, g *group, name, kubeconfig string) (*load.Target, error) {
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	args := []string{"proxy", "--kubeconfig=" + kubeconfig, "--address=127.0.0.1", "--port=" + strconv.Itoa(ports[0])}
	p, err := childproc.Start(name, r.Stack.Binaries.Kubectl, args, nil, r.path(name+".log"))
	if err != nil {
		return nil, err
	}
	g.add(p)
	t := load.NewTarget(name, "http://127.0.0.1:"+strconv.Itoa(ports[0]), nil, p.Pid())
	return t, waitReady(ctx, t, p)
}

// waitReady polls a GET of SmallPath through t until it succeeds.
func waitReady(ctx context.Context, t *load.Target, p *childproc.Process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		_, err := load.Get(ctx, t, SmallPath, nil)
		if err == nil {
			return nil
		}
		if p != nil {
			if p.HasExited() {
				return fmt.Errorf("%s exited: %s", p.Name, p.LogTail())
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered GET %s (last error: %v): %w", t.Name, SmallPath, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
