package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

const (
	// etcdReadyTimeout and apiServerReadyTimeout bound start-up; both start
	// in a few seconds, so hitting these means something is wrong.
	etcdReadyTimeout      = 30 * time.Second
	apiServerReadyTimeout = 60 * time.Second
	// stopGrace is how long a component gets to exit after SIGTERM.
	stopGrace = 5 * time.Second
)

// Options configures Start.
type Options struct {
	// Binaries are the etcd and kube-apiserver to run, from binaries.Ensure.
	Binaries binaries.Paths
	// Dir holds keys, data and logs. Empty means a new temporary directory.
	// It should be empty or absent: Start does not clean up what is there.
	Dir string
	// KeepDir leaves Dir in place after Stop, for reading the logs.
	KeepDir bool
	// Log receives progress lines. Nil discards them.
	Log io.Writer
	// ExtraAPIServerArgs are appended to kube-apiserver's flags; a flag given
	// here overrides the default of the same name.
	ExtraAPIServerArgs []string
	// FrontProxyNames, when set, makes kube-apiserver believe X-Remote-*
	// identity headers from client certificates its client CA signed for
	// these common names. Naming kip's own user is the worst case for a
	// proxy that leaked such headers, so tests that prove kip never
	// forwards them can fail.
	FrontProxyNames []string
	// AuditPolicyFile, when set, makes kube-apiserver write a JSON audit
	// log with that policy to Cluster.AuditLogPath, so that a test can see
	// which requests reached this cluster and as whom.
	AuditPolicyFile string
}

// Cluster is a running etcd and kube-apiserver. Its methods are safe for
// concurrent use.
type Cluster struct {
	// URL is kube-apiserver's https address on 127.0.0.1.
	URL string
	// ClientCA is the CA kube-apiserver trusts for client certificates. Sign
	// with it to log in as any user.
	ClientCA *pki.CA
	// ServingCAPEM verifies kube-apiserver's serving certificate.
	ServingCAPEM []byte
	// AdminConfig logs in as kip-admin in group system:masters.
	AdminConfig *rest.Config
	// AdminKubeconfig is the path of a kubeconfig for the same admin.
	AdminKubeconfig string
	// Dir holds the cluster's keys, etcd data and logs.
	Dir string
	// AuditLogPath is kube-apiserver's audit log, empty unless
	// Options.AuditPolicyFile was set.
	AuditLogPath string

	log           io.Writer
	keepDir       bool
	binaries      binaries.Paths
	apiServerArgs []string
	apiServerPort int

	mu        sync.Mutex // guards etcd and apiServer
	etcd      *childproc.Process
	apiServer *childproc.Process
}

// Start generates credentials, starts etcd and kube-apiserver and returns
// once kube-apiserver reports ready. ctx bounds the start-up only; the
// cluster runs until Stop. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	c := &Cluster{log: opts.Log, keepDir: opts.KeepDir, binaries: opts.Binaries}
	if c.log == nil {
		c.log = io.Discard
	}
	if c.Dir, err = makeDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()

	creds, err := newCredentials(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("generating cluster credentials: %w", err)
	}
	c.ClientCA, c.ServingCAPEM = creds.clientCA, creds.servingCAPEM

	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort := ports[0], ports[1]
	c.apiServerPort = ports[2]
	c.URL = "https://127.0.0.1:" + strconv.Itoa(c.apiServerPort)

	// AdminConfig is read back from the kubeconfig so the file is known to
	// work before anyone hands it to kubectl.
	c.AdminKubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := WriteKubeconfig(c.AdminKubeconfig, c.URL, creds.servingCAPEM, creds.adminCertPEM, creds.adminKeyPEM); err != nil {
		return nil, err
	}
	if c.AdminConfig, err = clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig); err != nil {
		return nil, fmt.Errorf("loading %s: %w", c.AdminKubeconfig, err)
	}

	if err := c.startEtcd(ctx, etcdPort, peerPort); err != nil {
		return nil, err
	}
	c.apiServerArgs = apiServerArgs(creds, etcdPort, c.apiServerPort)
	if len(opts.FrontProxyNames) > 0 {
		c.apiServerArgs = append(c.apiServerArgs, frontProxyArgs(creds, opts.FrontProxyNames)...)
	}
	if opts.AuditPolicyFile != "" {
		c.AuditLogPath = filepath.Join(c.Dir, "audit.log")
		c.apiServerArgs = append(c.apiServerArgs, "--audit-policy-file="+opts.AuditPolicyFile, "--audit-log-path="+c.AuditLogPath)
	}
	c.apiServerArgs = append(c.apiServerArgs, opts.ExtraAPIServerArgs...)
	if err := c.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func makeDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "kip-cluster-")
	}
	// Owner-only: the directory holds CA keys.
	return dir, os.MkdirAll(dir, 0o700)
}

func (c *Cluster) startEtcd(ctx context.Context, port, peerPort int) error {
	clientURL := "http://127.0.0.1:" + strconv.Itoa(port)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	args := []string{
		"--name=default",
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		// The data is thrown away afterwards; skipping fsync makes every
		// write, and so every test, faster.
		"--unsafe-no-fsync",
	}
	_, _ = fmt.Fprintf(c.log, "starting etcd on 127.0.0.1:%d\n", port)
	start := time.Now()
	p, err := childproc.Start("etcd", c.binaries.Etcd, args, nil, filepath.Join(c.Dir, "etcd.log"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.etcd = p
	c.mu.Unlock()

	client := &http.Client{}
	if err := p.WaitReady(ctx, etcdReadyTimeout, func(ctx context.Context) error {
		return childproc.GetOK(ctx, client, clientURL+"/health")
	}); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(c.log, "etcd ready in %s\n", since(start))
	return nil
}

// apiServerArgs are the fewest flags that give a working kube-apiserver with
// client-certificate authentication and RBAC.
func apiServerArgs(creds *credentials, etcdPort, port int) []string {
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--tls-cert-file=" + creds.servingCertFile,
		"--tls-private-key-file=" + creds.servingKeyFile,
		"--service-account-key-file=" + creds.serviceAccountKeyFile,
		"--service-account-signing-key-file=" + creds.serviceAccountKeyFile,
		"--service-account-issuer=https://kubernetes.default.svc",
		// Also makes kube-apiserver publish the CA in
		// kube-system/extension-apiserver-authentication, where kip reads it.
		"--client-ca-file=" + creds.clientCAFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		// Test nodes register InternalIP addresses only.
		"--kubelet-preferred-address-types=InternalIP",
	}
}

// frontProxyArgs trust the client CA's certificates for names for
// request-header authentication.
func frontProxyArgs(creds *credentials, names []string) []string {
	return []string{
		"--requestheader-client-ca-file=" + creds.clientCAFile,
		"--requestheader-allowed-names=" + strings.Join(names, ","),
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
	}
}

// StartAPIServer starts kube-apiserver on the cluster's port, with the
// cluster's flags, and waits until it is ready. Start calls it; call it
// again after StopAPIServer to bring the API server back.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiServer != nil {
		return errors.New("kube-apiserver is already running")
	}
	if c.etcd == nil {
		return errors.New("cluster is stopped")
	}
	_, _ = fmt.Fprintf(c.log, "starting kube-apiserver on %s\n", c.URL)
	start := time.Now()
	p, err := childproc.Start("kube-apiserver", c.binaries.KubeAPIServer, c.apiServerArgs, nil, filepath.Join(c.Dir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	c.apiServer = p

	client, err := rest.HTTPClientFor(c.AdminConfig)
	if err != nil {
		return err
	}
	// /readyz turns 200 only after the post-start hooks have run, among
	// them the RBAC bootstrap that tests rely on.
	if err := p.WaitReady(ctx, apiServerReadyTimeout, func(ctx context.Context) error {
		return childproc.GetOK(ctx, client, c.URL+"/readyz")
	}); err != nil {
		return errors.Join(err, c.stopAPIServerLocked())
	}
	_, _ = fmt.Fprintf(c.log, "kube-apiserver ready in %s\n", since(start))
	return nil
}

// StopAPIServer stops kube-apiserver and leaves etcd running, so that tests
// can see how kip behaves while its upstream is down.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopAPIServerLocked()
}

func (c *Cluster) stopAPIServerLocked() error {
	if c.apiServer == nil {
		return nil
	}
	err := c.apiServer.Stop(stopGrace)
	c.apiServer = nil
	_, _ = fmt.Fprintln(c.log, "stopped kube-apiserver")
	return err
}

// Stop stops kube-apiserver and etcd and removes Dir unless KeepDir was set.
// It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.stopAPIServerLocked()
	if c.etcd != nil {
		err = errors.Join(err, c.etcd.Stop(stopGrace))
		c.etcd = nil
	}
	if c.keepDir {
		_, _ = fmt.Fprintf(c.log, "keeping %s\n", c.Dir)
		return err
	}
	return errors.Join(err, os.RemoveAll(c.Dir))
}

// UserConfig returns a client configuration for kube-apiserver that logs in
// with a fresh client certificate for user in groups, signed by ClientCA.
func (c *Cluster) UserConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := c.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user, Organizations: groups})
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: c.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.ServingCAPEM,
			CertData: certPEM,
			KeyData:  keyPEM,
		},
	}, nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
