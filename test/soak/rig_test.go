package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

const (
	namespace = "kip-soak"
	// certUser signs in with a certificate from the cluster's client CA.
	certUser = "kip-soak-user"
	// oidcEmail and oidcGroup are who the exchange's ID tokens name.
	oidcEmail = "kip-soak@example.com"
	oidcGroup = "kip-soak-oidc"
	// oidcClientID is the client the soak signs in with at Hydra; its
	// callback is never visited: Hydra's redirect to it carries the code.
	oidcClientID = "kip-soak"
	oidcCallback = "http://127.0.0.1/kip-soak/callback"
	// configMaps is how many ConfigMaps the GETs and LISTs read; pulse is
	// the one the patches write and the watches see change.
	configMaps = 200
	pulse      = "pulse"
)

// rig is the real components the soak runs against, and kip as a process
// of its own in front of them.
type rig struct {
	dir   string
	log   io.Writer
	idp   *devstack.IdentityProvider
	stack *devstack.Stack
	// kip is `kip serve` built from this checkout; kipURL its secure port,
	// metricsURL its probe port's /metrics.
	kip        *harness.Kip
	kipArgs    []string
	kipURL     string
	metricsURL string
	admin      kubernetes.Interface
	nodes      []*testnode.Node
	echo       net.Listener
	echoPort   int
	// targets are the Pods exec and port-forward reach, one per node.
	targets []string
}

// startRig builds kip, starts Hydra, the control plane (devstack, whose
// own in-process kip stays idle), kip as a process, two test nodes (one
// declaring WebSocket support) and the fixtures.
func startRig(ctx context.Context, log io.Writer) (_ *rig, err error) {
	r := &rig{log: log}
	if r.dir, err = os.MkdirTemp("", "kip-soak-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.stop())
		}
	}()
	bins, err := binaries.Ensure(ctx, binaries.Options{Log: log})
	if err != nil {
		return nil, err
	}
	kipBin, err := harness.BuildKip(ctx, log)
	if err != nil {
		return nil, err
	}
	r.idp, err = devstack.StartIdentityProvider(ctx, devstack.IdentityOptions{
		HydraBinary: bins.Hydra, Dir: r.dir, Log: log, ClientID: oidcClientID, RedirectURIs: []string{oidcCallback},
	})
	if err != nil {
		return nil, err
	}
	if r.stack, err = devstack.Start(ctx, devstack.Options{Log: log}); err != nil {
		return nil, err
	}
	if r.admin, err = kubernetes.NewForConfig(r.stack.Cluster.AdminConfig); err != nil {
		return nil, err
	}
	if err := r.startKip(ctx, kipBin); err != nil {
		return nil, err
	}
	if err := createFixtures(ctx, r.admin); err != nil {
		return nil, err
	}
	return r, r.startNodes(ctx)
}

// startKip runs `kip serve` with the flags the stack's own kip has, plus
// trust in Hydra and the signer CA for the exchange, and waits until a
// user can read through it.
func (r *rig) startKip(ctx context.Context, bin string) error {
	k, err := harness.NewKip(harness.KipOptions{
		Binary: bin, Stack: r.stack, Args: r.idp.ServeArgs(), Dir: r.dir, Ready: r.kipServes,
	})
	if err != nil {
		return err
	}
	r.kip, r.kipArgs, r.kipURL, r.metricsURL = k, k.Args, k.URL, k.ProbeURL+"/metrics"
	_, _ = fmt.Fprintf(r.log, "starting kip on %s, probes on %s\n", r.kipURL, k.ProbeURL)
	return k.Start(ctx)
}

// kipServes succeeds once kip is ready and forwards a user's request.
func (r *rig) kipServes(ctx context.Context, k *harness.Kip) error {
	if err := harness.ReadyzOK(ctx, k); err != nil {
		return err
	}
	c, err := r.newClient(certUser, false)
	if err != nil {
		return err
	}
	defer c.close()
	// Forbidden is an answer: kip is up and forwards.
	if _, err := c.cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil && !isForbidden(err) {
		return err
	}
	return nil
}

// createFixtures makes the namespace, its ConfigMaps, and the rights of
// the certificate user and of the OIDC users' group in it.
func createFixtures(ctx context.Context, admin kubernetes.Interface) error {
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	// No kube-controller-manager: nobody else makes it, and Pods need it.
	if _, err := admin.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	data := map[string]string{"payload": fmt.Sprintf("%0512d", 0)}
	for i := range configMaps {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: configMapName(i)}, Data: data}
		if _, err := admin.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if _, err := admin.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: pulse}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "kip-soak"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/portforward"}, Verbs: []string{"create", "get"}},
	}}
	if _, err := admin.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kip-soak"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: certUser},
			{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: oidcGroup},
		},
	}
	_, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{})
	return err
}

func configMapName(i int) string { return fmt.Sprintf("cm-%03d", i) }

// startNodes starts the echo server behind the Pods' port, and a node of
// each kind with a Pod on it: kube-apiserver converts WebSocket to SPDY for
// one, and passes it through to the other.
func (r *rig) startNodes(ctx context.Context) error {
	var err error
	r.echo, err = testnode.ServePort(func(conn net.Conn) { _, _ = io.Copy(conn, conn) })
	if err != nil {
		return err
	}
	r.echoPort = r.echo.Addr().(*net.TCPAddr).Port
	for _, websocket := range []bool{false, true} {
		name := "kip-soak-node-converts"
		if websocket {
			name = "kip-soak-node-websocket"
		}
		n, err := testnode.Start(ctx, testnode.Options{Client: r.admin, Name: name, DeclareWebSocketFeature: websocket})
		if err != nil {
			return fmt.Errorf("starting test node %s: %w", name, err)
		}
		r.nodes = append(r.nodes, n)
		pod := "target-on-" + name
		if err := r.runPod(ctx, n.Name(), pod); err != nil {
			return err
		}
		r.targets = append(r.targets, pod)
	}
	return nil
}

// runPod creates a Pod on node whose port leads to the echo server, and
// waits until the node runs it.
func (r *rig) runPod(ctx context.Context, node, name string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "main", Image: "testnode.invalid/ignored",
			Ports: []corev1.ContainerPort{{ContainerPort: int32(r.echoPort), Protocol: corev1.ProtocolTCP}},
		}}},
	}
	pods := r.admin.CoreV1().Pods(namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Pod %s: %w", name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
}

// userConfig reaches kip as user with a certificate from the cluster's
// client CA, with no client-side rate limit: the soak paces itself.
func (r *rig) userConfig(user string) (*rest.Config, error) {
	certPEM, keyPEM, err := r.stack.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user})
	if err != nil {
		return nil, err
	}
	return r.certConfig(certPEM, keyPEM), nil
}

// certConfig reaches kip with a client certificate (none when empty).
func (r *rig) certConfig(certPEM, keyPEM []byte) *rest.Config {
	return &rest.Config{
		Host: r.kipURL, QPS: -1,
		TLSClientConfig: rest.TLSClientConfig{CAData: r.stack.KipCAPEM, CertData: certPEM, KeyData: keyPEM},
	}
}

// client is a clientset with a transport of its own, so that closing it
// closes its connections: client-go would otherwise share one cached
// transport per credential for the life of the process.
type client struct {
	cfg       *rest.Config
	cs        kubernetes.Interface
	transport *http.Transport
}

func (r *rig) newClient(user string, http1 bool) (*client, error) {
	cfg, err := r.userConfig(user)
	if err != nil {
		return nil, err
	}
	if http1 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return newClient(cfg)
}

func newClient(cfg *rest.Config) (*client, error) {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	// SetTransportDefaults turns HTTP/2 on, with client-go's health
	// checks, unless NextProtos leaves it out.
	tr := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: tlsConfig})
	cs, err := kubernetes.NewForConfigAndClient(cfg, &http.Client{Transport: tr})
	if err != nil {
		return nil, err
	}
	return &client{cfg: cfg, cs: cs, transport: tr}, nil
}

func (c *client) close() { c.transport.CloseIdleConnections() }

// exchangeClient posts TokenCredentialRequests to kip without a client
// certificate, as `kip login` does.
func (r *rig) exchangeClient() (rest.Interface, *http.Transport, error) {
	cfg := harness.ExchangeConfig(r.certConfig(nil, nil))
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	tr := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: tlsConfig})
	rc, err := rest.RESTClientForConfigAndClient(cfg, &http.Client{Transport: tr})
	return rc, tr, err
}

// restartUpstream stops kube-apiserver and starts it again with the same
// flags and port. It does not take the soak's context: once stopped, the
// API server must come back even if the soak is ending.
func (r *rig) restartUpstream() error {
	if err := r.stack.Cluster.StopAPIServer(); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.stack.Cluster.StartAPIServer(ctx); err != nil {
		return fmt.Errorf("starting kube-apiserver again: %w", err)
	}
	return nil
}

// stop stops everything startRig started, kip first so that it sees no
// upstream vanish under it.
func (r *rig) stop() error {
	var err error
	if r.kip != nil {
		err = r.kip.Stop(30 * time.Second)
	}
	harness.RemoveBuild()
	for _, n := range r.nodes {
		n.Stop()
	}
	if r.echo != nil {
		_ = r.echo.Close()
	}
	if r.stack != nil {
		err = errors.Join(err, r.stack.Stop())
	}
	if r.idp != nil {
		err = errors.Join(err, r.idp.Stop())
	}
	if os.Getenv("KIP_KEEP_TEST_DIR") == "" {
		err = errors.Join(err, os.RemoveAll(r.dir))
	} else {
		_, _ = fmt.Fprintf(r.log, "keeping %s\n", r.dir)
	}
	return err
}
