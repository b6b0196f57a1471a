package identity

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/childproc"
	"github.com/kip-proxy/kip/internal/devstack"
	"github.com/kip-proxy/kip/internal/localcluster"
)

// signerSecret is the Secret deploy/rbac.yaml lets kip keep its CA in.
const signerSecret = "kip-signer-ca"

// TestSignerCASecretSharedByReplicas: two kip replicas started at once
// with --signer-ca-secret and only the rights in deploy/rbac.yaml race to
// create the Secret; both end up with the one CA, so a certificate one of
// them issued is accepted by the other.
func TestSignerCASecretSharedByReplicas(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedSignerRole(t, ns)

	replicas := make([]*rest.Config, 2)
	logs := make([]string, len(replicas))
	started := make(chan error, len(replicas))
	for i := range replicas {
		logs[i] = filepath.Join(t.TempDir(), "kip.log")
		go func() {
			cfg, err := startReplica(t, ns, i, logs[i])
			replicas[i] = cfg
			started <- err
		}()
	}
	for range replicas {
		if err := <-started; err != nil {
			t.Fatal(err)
		}
	}
	for i, path := range logs {
		if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte("Another replica created the signer CA Secret first")) {
			t.Logf("replica %d lost the race to create the Secret and used the winner's", i)
		}
	}
	secret := getSecret(t, ns)
	if secret.Type != corev1.SecretTypeTLS || len(secret.Data[corev1.TLSCertKey]) == 0 {
		t.Fatalf("Secret %s/%s is %s with keys %v, want a kubernetes.io/tls CA", ns, signerSecret, secret.Type, keys(secret.Data))
	}

	name := uniqueName("replicated")
	token := idToken(t, clientID, person(name))
	for i, issuer := range replicas {
		cred := mustExchangeAt(t, issuer, token, nil)
		if !bytes.Equal(parseCert(t, cred.ClientCertificateData).RawIssuer, parseCert(t, string(secret.Data[corev1.TLSCertKey])).RawSubject) {
			t.Errorf("replica %d signs with a CA other than the Secret's", i)
		}
		for j, verifier := range replicas {
			cfg := rest.CopyConfig(verifier)
			cfg.CertData, cfg.KeyData = []byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)
			got, err := whoami(t, cfg)
			if err != nil {
				t.Errorf("a certificate from replica %d at replica %d: %v", i, j, err)
				continue
			}
			checkIdentity(t, got, idpUser(name))
		}
	}
}

// applyDeployedSignerRole applies deploy/rbac.yaml's signer Role in ns and
// binds it to the identity kip runs as.
func applyDeployedSignerRole(t *testing.T, ns string) {
	t.Helper()
	role := deployedSignerRole(t)
	role.Namespace = ns
	admin := adminClient(t)
	ctx := context.Background()
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: devstack.KipUser}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// deployedSignerRole reads the signer Role an operator applies.
func deployedSignerRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var role rbacv1.Role
		if err := dec.Decode(&role); err != nil {
			t.Fatalf("deploy/rbac.yaml has no Role %s: %v", signerSecret, err)
		}
		if role.Kind == "Role" && role.Name == signerSecret {
			return &role
		}
	}
}

// startReplica runs `kip serve` as a process of its own with the signer
// CA in ns's Secret, and returns a client configuration for it once it is
// ready. Its log goes to logPath.
func startReplica(t *testing.T, ns string, i int, logPath string) (*rest.Config, error) {
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve"}, env.stack.ServeArgs(env.stack.UpstreamKubeconfig, ports[0], ports[1])...)
	args = append(args, "--authentication-config="+env.idp.AuthenticationConfigFile, "--signer-ca-secret="+ns+"/"+signerSecret)
	p, err := childproc.Start(fmt.Sprintf("kip-%d", i), env.kip, args, nil, logPath)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	probe := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/readyz"
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if p.HasExited() {
			return false, fmt.Errorf("kip replica %d exited: %s", i, p.LogTail())
		}
		resp, err := http.Get(probe)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return nil, fmt.Errorf("kip replica %d never became ready: %w\n%s", i, err, p.LogTail())
	}
	return &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(ports[0]), TLSClientConfig: rest.TLSClientConfig{CAData: env.stack.KipCAPEM}}, nil
}

func getSecret(t *testing.T, ns string) *corev1.Secret {
	t.Helper()
	s, err := adminClient(t).CoreV1().Secrets(ns).Get(context.Background(), signerSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(env.stack.Cluster.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createNamespace makes a namespace for one test and removes it after.
func createNamespace(t *testing.T) string {
	t.Helper()
	ns := uniqueName("ns")
	admin := adminClient(t)
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}
