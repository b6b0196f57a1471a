package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// credentialIDExtra is where kube-apiserver's audit log names the token a
// request came with: "JTI=<the token's jti claim>".
const credentialIDExtra = "authentication.kubernetes.io/credential-id"

// TestInClusterTokenIsReloaded runs kip the way a pod runs it: no
// --kubeconfig, the API server from KUBERNETES_SERVICE_HOST/PORT, and a
// projected ServiceAccount token on disk that the kubelet replaces. The
// test replaces the token file, then revokes the old token by deleting the
// Secret it is bound to: kip keeps working, through its HTTP/2 transport
// and its HTTP/1.1 upgrade transport, and the upstream's audit log shows
// the new token at work.
func TestInClusterTokenIsReloaded(t *testing.T) {
	ctx := context.Background()
	ns := createNamespace(t)
	saName := harness.UniqueName("kip")
	tokens := newInClusterServiceAccount(t, ns, saName)
	tokenA, revokeA := tokens.mint(t, "a")
	tokenB, _ := tokens.mint(t, "b")

	dir := t.TempDir()
	tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	writeAtomically(t, tokenFile, tokenA)
	writeAtomically(t, caFile, string(stack.Cluster.ServingCAPEM))
	kipURL := startInClusterKip(t, tokenFile, caFile)

	user := harness.UniqueName("incluster-user")
	grant(t, ns, userSubject(user), configMapRules...)
	userCfg := stack.UserConfigFor(user)
	userCfg.Host = kipURL
	client := kubernetes.NewForConfigOrDie(userCfg)

	if jti := getThroughKip(t, client, ns, "before"); jti != jwtID(t, tokenA) {
		t.Fatalf("kip's first request came with token %q, want token A %q", jti, jwtID(t, tokenA))
	}
	watchThroughKip(t, userCfg, ns)

	// The kubelet swaps the file atomically, and the old token stays valid
	// for a while; deleting its Secret makes it fail at once, so only a
	// kip that re-reads the file can go on.
	writeAtomically(t, tokenFile, tokenB)
	revokeA()
	harness.Eventually(t, 30*time.Second, func() error { return tokenRefused(ctx, tokenA) })

	// client-go re-reads the file about once a minute.
	revoked := time.Now()
	var jti string
	harness.Eventually(t, 2*time.Minute, func() error {
		var err error
		jti, err = tryGetThroughKip(t, client, ns, "after")
		return err
	})
	t.Logf("kip went on with the new token %s after the old one was revoked", time.Since(revoked).Round(time.Second))
	if want := jwtID(t, tokenB); jti != want {
		t.Errorf("after the swap kip's request came with token %q, want token B %q", jti, want)
	}
	harness.Eventually(t, 2*time.Minute, func() error { return tryWatchThroughKip(userCfg, ns) })
}

// inClusterServiceAccount is kip's ServiceAccount, bound like
// deploy/rbac.yaml binds it.
type inClusterServiceAccount struct {
	admin    kubernetes.Interface
	ns, name string
}

func newInClusterServiceAccount(t *testing.T, ns, name string) *inClusterServiceAccount {
	t.Helper()
	ctx := context.Background()
	admin := adminClient(t)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: devstack.ProxyClusterRole().Name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: crb.Name, Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().RoleBindings("kube-system").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
		_ = admin.RbacV1().RoleBindings("kube-system").Delete(context.Background(), rb.Name, metav1.DeleteOptions{})
	})
	return &inClusterServiceAccount{admin: admin, ns: ns, name: name}
}

// mint returns a token bound to a Secret of its own, and a function that
// revokes the token by deleting that Secret. TokenRequest's shortest
// lifetime is ten minutes, too long to wait for.
func (s *inClusterServiceAccount) mint(t *testing.T, suffix string) (token string, revoke func()) {
	t.Helper()
	ctx := context.Background()
	secret, err := s.admin.CoreV1().Secrets(s.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.name + "-" + suffix}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.admin.CoreV1().ServiceAccounts(s.ns).CreateToken(ctx, s.name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: secret.Name, UID: secret.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token, func() {
		if err := s.admin.CoreV1().Secrets(s.ns).Delete(ctx, secret.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// startInClusterKip starts kip in this process through the same flag
// parsing as `kip serve`, in-cluster, and returns its URL once it serves.
func startInClusterKip(t *testing.T, tokenFile, caFile string) string {
	t.Helper()
	upstream, err := url.Parse(stack.Cluster.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Read once, by Config below; the test runs alone (no t.Parallel).
	t.Setenv("KUBERNETES_SERVICE_HOST", upstream.Hostname())
	t.Setenv("KUBERNETES_SERVICE_PORT", upstream.Port())
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	o := harness.ParseServe(t, []string{
		"--in-cluster-token-file=" + tokenFile,
		"--in-cluster-ca-file=" + caFile,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--tls-cert-file=" + stack.ServingCertFile,
		"--tls-private-key-file=" + stack.ServingKeyFile,
		"--probe-bind-address=127.0.0.1",
		"--probe-port=" + strconv.Itoa(ports[1]),
	})
	if o.Kubeconfig != "" {
		t.Fatal("the in-cluster test must not use a kubeconfig")
	}
	return harness.ServeInProcess(t, o, ports[0], ports[1])
}

// getThroughKip reads a ConfigMap through kip's ordinary (HTTP/2)
// transport and returns the JTI of the token kip used upstream.
func getThroughKip(t *testing.T, client kubernetes.Interface, ns, step string) string {
	t.Helper()
	jti, err := tryGetThroughKip(t, client, ns, step)
	if err != nil {
		t.Fatal(err)
	}
	return jti
}

func tryGetThroughKip(t *testing.T, client kubernetes.Interface, ns, step string) (string, error) {
	marker := harness.UniqueName("incluster-" + step)
	_, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), marker, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("GET through kip: want 404 Not Found from the upstream, got %v", err)
	}
	for _, ev := range readAudit(t, auditLogPath, marker) {
		if ids := ev.User.Extra[credentialIDExtra]; len(ids) == 1 {
			return strings.TrimPrefix(ids[0], "JTI="), nil
		}
	}
	return "", fmt.Errorf("no upstream audit event with a %s for %s yet", credentialIDExtra, marker)
}

// watchThroughKip opens a WebSocket watch, which goes through kip's
// HTTP/1.1 upgrade transport, a client-go transport of its own.
func watchThroughKip(t *testing.T, cfg *rest.Config, ns string) {
	t.Helper()
	if err := tryWatchThroughKip(cfg, ns); err != nil {
		t.Fatal(err)
	}
}

func tryWatchThroughKip(cfg *rest.Config, ns string) error {
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	dialer := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: 30 * time.Second}
	wsURL := "wss" + strings.TrimPrefix(cfg.Host, "https") + "/api/v1/namespaces/" + ns + "/configmaps?watch=true"
	// The upstream's WebSocket server refuses a handshake without Origin.
	conn, resp, err := dialer.Dial(wsURL, http.Header{"Origin": {cfg.Host}}) //nolint:bodyclose // gorilla/websocket: the response body "does not need to be closed by the application"
	if err != nil {
		if resp != nil {
			return fmt.Errorf("WebSocket watch through kip: %s", resp.Status)
		}
		return err
	}
	return conn.Close()
}

// tokenRefused is nil once the upstream itself refuses token.
func tokenRefused(ctx context.Context, token string) error {
	direct := kubernetes.NewForConfigOrDie(&rest.Config{
		Host:            stack.Cluster.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: stack.Cluster.ServingCAPEM},
	})
	_, err := direct.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if apierrors.IsUnauthorized(err) {
		return nil
	}
	return fmt.Errorf("the revoked token still works (%v)", err)
}

// jwtID is the jti claim of a ServiceAccount token.
func jwtID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.JTI == "" {
		t.Fatalf("token has no jti claim: %v", err)
	}
	return claims.JTI
}

// writeAtomically replaces path the way the kubelet updates a projected
// volume: the new content appears all at once.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
