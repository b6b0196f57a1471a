package identity

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// signerSecret is the Secret deploy/rbac.yaml lets kip keep its CA in; the
// Lease that decides who rotates it has the same name.
const signerSecret = "kip-signer-ca"

// replica is one `kip serve` process sharing the signer CA Secret.
type replica struct {
	*harness.Kip
	index int
	// identity is its holderIdentity in the signer CA Lease.
	identity string
	// config reaches the cluster through it, with no credential yet.
	config *rest.Config
}

// startReplicas starts n replicas at once, each with the flags extra(i)
// adds, and returns them once all are ready.
func startReplicas(t *testing.T, ns string, n int, extra func(i int) []string) []*replica {
	t.Helper()
	replicas := make([]*replica, n)
	kips := make([]*harness.Kip, n)
	for i := range replicas {
		var args []string
		if extra != nil {
			args = extra(i)
		}
		replicas[i] = newReplica(t, ns, i, args...)
		kips[i] = replicas[i].Kip
	}
	harness.StartReplicas(t, kips)
	return replicas
}

// startReplica starts one replica and returns it once it is ready.
func startReplica(t *testing.T, ns string, i int, extra ...string) (*replica, error) {
	t.Helper()
	r := newReplica(t, ns, i, extra...)
	return r, r.Start(context.Background())
}

// newReplica prepares `kip serve` as a process of its own with the signer
// CA in ns's Secret. Its Lease identity, kip-<i>_127.0.0.1:<port>, says
// which process holds the Lease.
func newReplica(t *testing.T, ns string, i int, extra ...string) *replica {
	t.Helper()
	k := harness.PrepareKip(t, harness.KipOptions{Name: fmt.Sprintf("kip-%d", i), Binary: env.kip, Stack: env.stack})
	r := &replica{Kip: k, index: i, identity: fmt.Sprintf("kip-%d_%s", i, k.Addr), config: k.Config()}
	k.Args = append(k.Args, "--authentication-config="+env.idp.AuthenticationConfigFile, "--signer-ca-secret="+ns+"/"+signerSecret,
		"--signer-ca-lease-identity="+r.identity)
	k.Args = append(k.Args, extra...)
	return r
}

// applyDeployedRole applies deploy/rbac.yaml's Role called name in ns and
// binds it to the identity kip runs as.
func applyDeployedRole(t *testing.T, ns, name string) {
	t.Helper()
	role, err := harness.DeployedRole(name)
	if err != nil {
		t.Fatal(err)
	}
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
	return harness.AdminClient(t, env.stack)
}

// createNamespace makes a namespace for one test and removes it after.
func createNamespace(t *testing.T) string {
	t.Helper()
	return harness.CreateNamespace(t, adminClient(t))
}
