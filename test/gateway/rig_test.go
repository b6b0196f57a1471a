package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

// The clusters behind kip. alpha and beta have a test kubelet each (alpha's
// declares WebSocket support, beta's does not, so both ways kube-apiserver
// reaches a node are covered); gamma has none and is the one the fault
// tests stop.
const (
	alpha = "alpha"
	beta  = "beta"
	gamma = "gamma"
)

var clusterNames = []string{alpha, beta, gamma}

// kipNamespace holds kip's ServiceAccounts on each cluster, as
// deploy/rbac.yaml expects them.
const kipNamespace = "kip-system"

// accessExtension names the per-cluster access policy in a cluster entry.
const accessExtension = "kip.dev/access"

// gateway is the package's rig: three control planes and a kip in front of
// them, reading its clusters from clustersDir.
type gateway struct {
	bins binaries.Paths
	// clustersDir is kip's --clusters-dir: one kubeconfig per cluster.
	clustersDir string
	// recordingDir is kip's --recording-dir: every exec and attach.
	recordingDir string
	kip          *harness.Kip
	// another starts a second kip like kip, for a test to add flags to.
	another harness.KipOptions
	// signer is kip's signer CA: a certificate it signs is one of kip's own
	// and valid at every cluster.
	signer  *pki.CA
	members map[string]*member

	dir string
}

// member is one cluster behind kip.
type member struct {
	name    string
	cluster *localcluster.Cluster
	admin   kubernetes.Interface
	// node is the cluster's test kubelet; nil for gamma.
	node *testnode.Node
	// kipCred is kip's credential for the cluster, as its entry holds it.
	kipCred credential
}

// credential is what a cluster entry logs in to the cluster with: a
// ServiceAccount token or a client certificate.
type credential struct {
	token           string
	certPEM, keyPEM []byte
	// user is the name the cluster knows the credential by, which its
	// audit log records for every request kip forwards with it.
	user string
}

// access is the kip.dev/access extension of a cluster entry.
type access struct {
	Groups     []string `json:"groups,omitempty"`
	Expression string   `json:"expression,omitempty"`
}

// startGateway starts the three clusters side by side, gives kip its
// rights and an entry on each, starts the test kubelets and kip, and
// returns once every cluster answers through kip. On error it returns what
// it started, for the caller to stop.
func startGateway(ctx context.Context, dir string) (*gateway, error) {
	g := &gateway{dir: dir, clustersDir: filepath.Join(dir, "clusters"), recordingDir: filepath.Join(dir, "recordings"), members: map[string]*member{}}
	if err := os.MkdirAll(g.clustersDir, 0o700); err != nil {
		return nil, err
	}
	var err error
	if g.bins, err = binaries.Ensure(ctx, binaries.Options{Log: os.Stderr}); err != nil {
		return nil, err
	}
	if err := g.startClusters(ctx); err != nil {
		return g, err
	}
	for _, m := range g.members {
		if err := g.register(ctx, m); err != nil {
			return g, err
		}
	}
	for name, websocket := range map[string]bool{alpha: true, beta: false} {
		m := g.members[name]
		m.node, err = testnode.Start(ctx, testnode.Options{Client: m.admin, Name: "node-" + name, DeclareWebSocketFeature: websocket, Log: nodeLog()})
		if err != nil {
			return g, fmt.Errorf("starting %s's test node: %w", name, err)
		}
	}
	if err := g.startKip(ctx); err != nil {
		return g, err
	}
	return g, g.waitForClusters(ctx)
}

// startClusters starts the three control planes at once: each has its own
// ports, directory, etcd, CAs and audit log.
func (g *gateway) startClusters(ctx context.Context) error {
	policy, err := harness.WriteAuditPolicy(g.dir)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(clusterNames))
	for i, name := range clusterNames {
		wg.Go(func() {
			c, err := localcluster.Start(ctx, localcluster.Options{
				Binaries: g.bins, Dir: filepath.Join(g.dir, name), KeepDir: harness.KeepDir(),
				Log: os.Stderr, AuditPolicyFile: policy,
			})
			if err != nil {
				errs[i] = fmt.Errorf("starting cluster %s: %w", name, err)
				return
			}
			admin, err := kubernetes.NewForConfig(c.AdminConfig)
			mu.Lock()
			g.members[name] = &member{name: name, cluster: c, admin: admin}
			mu.Unlock()
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// register gives kip its rights on m and writes m's entry. alpha and beta
// are reached with a ServiceAccount token, as the chart's add-a-cluster
// procedure does; gamma with a client certificate from its own CA.
func (g *gateway) register(ctx context.Context, m *member) error {
	var err error
	if m.name == gamma {
		m.kipCred, err = certCredential(m.cluster, "kip-proxy-"+m.name)
	} else {
		m.kipCred, err = serviceAccountCredential(ctx, m.admin, "kip")
	}
	if err != nil {
		return fmt.Errorf("making kip's credential for %s: %w", m.name, err)
	}
	if err := bindKipRole(ctx, m.admin, m.kipCred.user); err != nil {
		return fmt.Errorf("granting kip its rights on %s: %w", m.name, err)
	}
	data, err := g.entry(m, m.kipCred, nil)
	if err != nil {
		return err
	}
	return g.putEntry(m.name+".kubeconfig", data)
}

// serviceAccountCredential makes ServiceAccount kip-system/name on the
// cluster and a day-long token for it.
func serviceAccountCredential(ctx context.Context, admin kubernetes.Interface, name string) (credential, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kipNamespace}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return credential{}, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := admin.CoreV1().ServiceAccounts(kipNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return credential{}, err
	}
	token, err := serviceAccountToken(ctx, admin, kipNamespace, name)
	if err != nil {
		return credential{}, err
	}
	return credential{token: token, user: "system:serviceaccount:" + kipNamespace + ":" + name}, nil
}

// serviceAccountToken asks the cluster for a day-long token of ns/name.
func serviceAccountToken(ctx context.Context, admin kubernetes.Interface, ns, name string) (string, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("a token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	return tr.Status.Token, nil
}

// certCredential is a client certificate for user from the cluster's own
// client CA.
func certCredential(c *localcluster.Cluster, user string) (credential, error) {
	certPEM, keyPEM, err := c.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user, NotAfter: time.Now().Add(24 * time.Hour)})
	return credential{certPEM: certPEM, keyPEM: keyPEM, user: user}, err
}

// bindKipRole binds deploy/rbac.yaml's ClusterRole kip-proxy to the user
// or ServiceAccount called user, and lets it read the cluster's client CA,
// exactly as an operator's manifests do.
func bindKipRole(ctx context.Context, admin kubernetes.Interface, user string) error {
	role, err := harness.DeployedClusterRole("kip-proxy")
	if err != nil {
		return err
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	subject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}
	binding := harness.UniqueName("kip-proxy")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding, Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   []rbacv1.Subject{subject},
	}
	_, err = admin.RbacV1().RoleBindings("kube-system").Create(ctx, rb, metav1.CreateOptions{})
	return err
}

// entry is a cluster entry as an operator writes it: m's server and CA,
// kip's credential cred and, when set, the access policy.
func (g *gateway) entry(m *member, cred credential, policy *access) ([]byte, error) {
	return yaml.Marshal(entryConfig(m, cred, policy))
}

// entryConfig is entry before it is written, for tests that spoil it.
func entryConfig(m *member, cred credential, policy *access) *clientcmdv1.Config {
	cluster := clientcmdv1.Cluster{Server: m.cluster.URL, CertificateAuthorityData: m.cluster.ServingCAPEM}
	if policy != nil {
		// json.Marshal cannot fail on two strings.
		raw, _ := json.Marshal(policy)
		cluster.Extensions = []clientcmdv1.NamedExtension{{Name: accessExtension, Extension: runtime.RawExtension{Raw: raw}}}
	}
	return &clientcmdv1.Config{
		Kind: "Config", APIVersion: "v1",
		Clusters:       []clientcmdv1.NamedCluster{{Name: m.name, Cluster: cluster}},
		AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: "kip", AuthInfo: clientcmdv1.AuthInfo{Token: cred.token, ClientCertificateData: cred.certPEM, ClientKeyData: cred.keyPEM}}},
		Contexts:       []clientcmdv1.NamedContext{{Name: "kip@" + m.name, Context: clientcmdv1.Context{Cluster: m.name, AuthInfo: "kip"}}},
		CurrentContext: "kip@" + m.name,
	}
}

// putEntry writes file into the clusters directory at once, through a
// dotfile that kip skips, as a mounted Secret changes.
func (g *gateway) putEntry(file string, data []byte) error {
	tmp := filepath.Join(g.clustersDir, "."+file+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(g.clustersDir, file))
}

// startKip runs `kip serve --clusters-dir` with a serving certificate, a
// signer CA, trust in each cluster's own client CA, and an audit log.
func (g *gateway) startKip(ctx context.Context) error {
	kipDir := filepath.Join(g.dir, "kip")
	if err := os.MkdirAll(kipDir, 0o700); err != nil {
		return err
	}
	servingCA, err := pki.NewCA("kip-gateway-serving-ca", 24*time.Hour)
	if err != nil {
		return err
	}
	servingCert, servingKey, err := servingCA.IssueServing([]string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return err
	}
	certFile, keyFile, err := pki.WriteFiles(kipDir, "serving", servingCert, servingKey)
	if err != nil {
		return err
	}
	if g.signer, err = pki.NewCA("kip-gateway-signer", 24*time.Hour); err != nil {
		return err
	}
	signerKey, err := g.signer.KeyPEM()
	if err != nil {
		return err
	}
	signerCert, signerKeyFile, err := pki.WriteFiles(kipDir, "signer", g.signer.CertPEM, signerKey)
	if err != nil {
		return err
	}
	policy, err := harness.WriteAuditPolicy(kipDir)
	if err != nil {
		return err
	}
	bin, err := harness.BuildKip(ctx, os.Stderr)
	if err != nil {
		return err
	}
	// Another kip in front of the same clusters, as a test starts one, shares
	// the clusters, the serving certificate and the signer: everything but
	// the audit log and recordings.
	g.another = harness.KipOptions{
		Binary: bin, CAPEM: servingCA.CertPEM,
		Args: []string{
			"--clusters-dir=" + g.clustersDir,
			"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
			"--signer-ca-cert-file=" + signerCert, "--signer-ca-key-file=" + signerKeyFile,
			"--trust-cluster-client-ca",
		},
	}
	opts := g.another
	opts.Dir = kipDir
	opts.Args = append(opts.Args[:len(opts.Args):len(opts.Args)],
		"--audit-policy-file="+policy, "--audit-log-path="+filepath.Join(kipDir, "audit.log"),
		"--recording-dir="+g.recordingDir)
	g.kip, err = harness.NewKip(opts)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(os.Stderr, "starting kip on %s in front of %v\n", g.kip.URL, clusterNames)
	// An error carries the end of kip's log.
	return g.kip.Start(ctx)
}

// waitForClusters returns once each cluster answers through kip, to one
// of kip's own certificates, and trusts its own client CA there.
func (g *gateway) waitForClusters(ctx context.Context) error {
	probe, err := g.userTLS("kip-start-probe")
	if err != nil {
		return err
	}
	client := g.httpClient(probe, "h2")
	for _, name := range clusterNames {
		caProbe, err := g.members[name].clusterCert("kip-start-probe")
		if err != nil {
			return err
		}
		caClient := g.httpClient(caProbe, "h2")
		var last error
		deadline := time.Now().Add(time.Minute)
		for {
			if last = getOK(ctx, client, g.clusterURL(name)+"/version"); last == nil {
				// The cluster's client CA loads from a ConfigMap after the
				// cluster is registered.
				if last = getOK(ctx, caClient, g.clusterURL(name)+"/version"); last == nil {
					break
				}
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("cluster %s never answered through kip: %w\n%s", name, last, g.kip.LogTail())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// clusterURL is where kubectl reaches cluster name through kip.
func (g *gateway) clusterURL(name string) string { return g.kip.URL + "/clusters/" + name }

// userTLS is a client certificate for user in groups from kip's signer.
func (g *gateway) userTLS(user string, groups ...string) (tls.Certificate, error) {
	certPEM, keyPEM, err := g.signer.IssueClient(pki.ClientCertRequest{CommonName: user, Organizations: groups})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// clusterCert is a client certificate for user from m's own client CA.
func (m *member) clusterCert(user string, groups ...string) (tls.Certificate, error) {
	certPEM, keyPEM, err := m.cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: user, Organizations: groups})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// stop ends kip, the nodes and the clusters, in that order.
func (g *gateway) stop() error {
	var errs []error
	if g.kip != nil {
		errs = append(errs, g.kip.Stop(10*time.Second))
	}
	for _, m := range g.members {
		if m.node != nil {
			m.node.Stop()
		}
	}
	for _, m := range g.members {
		errs = append(errs, m.cluster.Stop())
	}
	return errors.Join(errs...)
}

// nodeLog shows what the nodes do when KIP_TEST_NODE_LOG asks for it.
func nodeLog() io.Writer {
	if os.Getenv("KIP_TEST_NODE_LOG") != "" {
		return os.Stderr
	}
	return nil
}
