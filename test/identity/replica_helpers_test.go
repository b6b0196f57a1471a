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

	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// signerSecret is the Secret deploy/rbac.yaml lets kip keep its CA in; the
// Lease that decides who rotates it has the same name.
const signerSecret = "kip-signer-ca"

// replica is one `kip serve` process sharing the signer CA Secret.
type replica struct {
	index int
	// identity is its holderIdentity in the signer CA Lease.
	identity string
	// config reaches the cluster through it, with no credential yet.
	config *rest.Config
	proc   *childproc.Process
	log    string
}

// startReplicas starts n replicas at once, each with the flags extra(i)
// adds, and returns them once all are ready.
func startReplicas(t *testing.T, ns string, n int, extra func(i int) []string) []*replica {
	t.Helper()
	replicas := make([]*replica, n)
	started := make(chan error, n)
	for i := range replicas {
		go func() {
			var args []string
			if extra != nil {
				args = extra(i)
			}
			r, err := startReplica(t, ns, i, args...)
			replicas[i] = r
			started <- err
		}()
	}
	for range replicas {
		if err := <-started; err != nil {
			t.Fatal(err)
		}
	}
	return replicas
}

// startReplica runs `kip serve` as a process of its own with the signer
// CA in ns's Secret, and returns it once it is ready. Its Lease identity,
// kip-<i>_127.0.0.1:<port>, says which process holds the Lease.
func startReplica(t *testing.T, ns string, i int, extra ...string) (*replica, error) {
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	r := &replica{
		index:    i,
		identity: fmt.Sprintf("kip-%d_%s", i, addr),
		config:   &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{CAData: env.stack.KipCAPEM}},
		log:      filepath.Join(t.TempDir(), fmt.Sprintf("kip-%d.log", i)),
	}
	args := append([]string{"serve"}, env.stack.ServeArgs(env.stack.UpstreamKubeconfig, ports[0], ports[1])...)
	args = append(args, "--authentication-config="+env.idp.AuthenticationConfigFile, "--signer-ca-secret="+ns+"/"+signerSecret,
		"--signer-ca-lease-identity="+r.identity)
	args = append(args, extra...)
	if r.proc, err = childproc.Start(fmt.Sprintf("kip-%d", i), env.kip, args, nil, r.log); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = r.proc.Stop(10 * time.Second) })
	probe := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/readyz"
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if r.proc.HasExited() {
			return false, fmt.Errorf("kip replica %d exited: %s", i, r.proc.LogTail())
		}
		resp, err := http.Get(probe)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return nil, fmt.Errorf("kip replica %d never became ready: %w\n%s", i, err, r.proc.LogTail())
	}
	return r, nil
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
