package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/server"
)

// Options configures Start.
type Options struct {
	// RepoRoot is the kip checkout whose tools modules build the binaries.
	// Empty means the checkout around the working directory.
	RepoRoot string
	// Log receives progress lines. Nil discards them.
	Log io.Writer
	// KeepDir leaves the cluster's directory (keys, logs) behind on Stop.
	KeepDir bool
	// ExtraAPIServerArgs are added to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// TrustKipAsFrontProxy makes kube-apiserver believe X-Remote-* headers
	// from kip, so a test can see whether kip ever forwards a caller's.
	TrustKipAsFrontProxy bool
	// ServeArgs are extra `kip serve` flags, applied after the stack's own.
	ServeArgs []string
}

// Stack is a running control plane with kip in front of it.
type Stack struct {
	Cluster  *localcluster.Cluster
	Binaries binaries.Paths
	// KipURL is kip's https address; KipCAPEM verifies its certificate.
	KipURL   string
	KipCAPEM []byte
	// ServingCA signs kip's serving certificate; ServingCertFile and
	// ServingKeyFile are the files kip serves from and reloads.
	ServingCA                       *pki.CA
	ServingCertFile, ServingKeyFile string
	// ProbeURL is kip's plain-HTTP probe server.
	ProbeURL string
	// UpstreamKubeconfig is what kip runs with: the cluster's address and
	// a client certificate for KipUser.
	UpstreamKubeconfig string

	stop    context.CancelFunc
	stopped chan error
}

// Start builds what is missing, starts etcd, kube-apiserver and kip, and
// returns once a user can reach the cluster through kip.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	bins, err := binaries.Ensure(ctx, binaries.Options{RepoRoot: opts.RepoRoot, Log: log})
	if err != nil {
		return nil, err
	}
	clusterOpts := localcluster.Options{
		Binaries: bins, Log: log, KeepDir: opts.KeepDir,
		ExtraAPIServerArgs: opts.ExtraAPIServerArgs,
	}
	if opts.TrustKipAsFrontProxy {
		clusterOpts.FrontProxyNames = []string{KipUser}
	}
	cluster, err := localcluster.Start(ctx, clusterOpts)
	if err != nil {
		return nil, err
	}
	s := &Stack{Cluster: cluster, Binaries: bins}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	admin, err := kubernetes.NewForConfig(cluster.AdminConfig)
	if err != nil {
		return nil, err
	}
	if err := grantProxyRights(ctx, admin); err != nil {
		return nil, err
	}
	if err := s.startKip(ctx, opts.ServeArgs, log); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) startKip(ctx context.Context, serveArgs []string, log io.Writer) error {
	dir := filepath.Join(s.Cluster.Dir, "kip")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	upstream, err := s.kipUpstreamKubeconfig(dir)
	if err != nil {
		return err
	}
	if err := s.writeServingCert(dir); err != nil {
		return err
	}
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		return err
	}
	s.KipURL = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	s.ProbeURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.UpstreamKubeconfig = upstream
	srv, err := newServer(append(s.ServeArgs(upstream, ports[0], ports[1]), serveArgs...))
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(context.Background())
	s.stop, s.stopped = stop, make(chan error, 1)
	go func() { s.stopped <- srv.Run(runCtx) }()
	_, _ = fmt.Fprintf(log, "starting kip on %s (probes on %s)\n", s.KipURL, s.ProbeURL)
	return s.waitForKip(ctx)
}

// ServeArgs are the `kip serve` flags the stack runs its kip with, for a
// kip on port and probePort whose upstream is described by kubeconfig. The
// benchmarks start more kips the same way, as processes of their own.
func (s *Stack) ServeArgs(kubeconfig string, port, probePort int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + s.ServingCertFile,
		"--tls-private-key-file=" + s.ServingKeyFile,
		"--probe-bind-address=127.0.0.1",
		"--probe-port=" + strconv.Itoa(probePort),
		"--profiling",
	}
}

// newServer goes through the same flag parsing as `kip serve`.
func newServer(args []string) (*server.Server, error) {
	o, err := ParseServe(args)
	if err != nil {
		return nil, err
	}
	cfg, err := o.Config()
	if err != nil {
		return nil, err
	}
	return server.New(cfg)
}

// ParseServe parses, completes and validates args as `kip serve` does, so
// that a kip in this process starts as the binary would.
func ParseServe(args []string) (*options.Serve, error) {
	o := options.NewServe()
	fs := pflag.NewFlagSet("kip serve", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := o.Complete(fs); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// kipUpstreamKubeconfig gives kip a client certificate of its own for the
// cluster, bound only to ProxyClusterRole.
func (s *Stack) kipUpstreamKubeconfig(dir string) (string, error) {
	certPEM, keyPEM, err := s.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: KipUser})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "upstream.kubeconfig")
	return path, localcluster.WriteKubeconfig(path, s.Cluster.URL, s.Cluster.ServingCAPEM, certPEM, keyPEM)
}

func (s *Stack) writeServingCert(dir string) error {
	ca, err := pki.NewCA("kip-serving-ca", 24*time.Hour)
	if err != nil {
		return err
	}
	s.ServingCA, s.KipCAPEM = ca, ca.CertPEM
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return err
	}
	s.ServingCertFile, s.ServingKeyFile, err = pki.WriteFiles(dir, "serving", certPEM, keyPEM)
	return err
}

// waitForKip returns once kip is ready and accepts a certificate from the
// cluster's client CA, which it learns from a ConfigMap shortly after start.
func (s *Stack) waitForKip(ctx context.Context) error {
	probe := s.UserConfigFor("kip-start-probe")
	probe.QPS, probe.Burst = -1, 0 // polling, not load
	client, err := kubernetes.NewForConfig(probe)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-s.stopped:
			return false, fmt.Errorf("kip exited: %w", err)
		default:
		}
		if last = getOK(ctx, s.ProbeURL+"/readyz"); last != nil {
			return false, nil
		}
		_, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kip (last error: %v): %w", last, err)
	}
	return nil
}

func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// UserConfigFor returns a client configuration that reaches the cluster
// through kip as user in groups, with a certificate from the cluster's CA.
// It panics only if the certificate cannot be made, which means the machine
// has no randomness left.
func (s *Stack) UserConfigFor(user string, groups ...string) *rest.Config {
	cfg, err := s.UserConfig(user, groups...)
	if err != nil {
		panic(err)
	}
	return cfg
}

// UserConfig is UserConfigFor that returns its error.
func (s *Stack) UserConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := s.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user, Organizations: groups})
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            s.KipURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.KipCAPEM, CertData: certPEM, KeyData: keyPEM},
	}, nil
}

// WriteUserKubeconfig writes a kubeconfig at path for user in groups that
// goes through kip.
func (s *Stack) WriteUserKubeconfig(path, user string, groups ...string) error {
	certPEM, keyPEM, err := s.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user, Organizations: groups})
	if err != nil {
		return err
	}
	return localcluster.WriteKubeconfig(path, s.KipURL, s.KipCAPEM, certPEM, keyPEM)
}

// Stop stops kip, waiting for it to drain, then the control plane.
func (s *Stack) Stop() error {
	var err error
	if s.stop != nil {
		s.stop()
		select {
		case err = <-s.stopped:
		case <-time.After(70 * time.Second):
			err = errors.New("kip did not stop within 70s")
		}
		s.stop = nil
	}
	if s.Cluster != nil {
		err = errors.Join(err, s.Cluster.Stop())
	}
	return err
}
