package deploy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// signerSecret and signerLease are the chart's defaults (values.yaml
// signer.secretName, signer.leaseName).
const signerSecret, signerLease = "kip-signer-ca", "kip-signer-ca"

// accountAction is one request kip's ServiceAccount makes with its own
// token, and whether the upstream must allow it.
type accountAction struct {
	name    string
	allowed bool
	do      func(ctx context.Context, c kubernetes.Interface) error
}

// TestChartSignerSecretException applies the chart's rendered RBAC (its
// default values) for real and makes, with a token of the chart's
// ServiceAccount and no impersonation, every request on Secrets and Leases
// that docs/security.md §5 names, both ways.
//
// Verdict, from kube-apiserver's RBAC: kip's account may create Secrets in
// its namespace (of any name: RBAC cannot limit create), and get, list and
// watch (by metadata.name) and update the signer Secret alone; it may not
// patch or delete it, nor get, list, watch, update, patch or delete any
// other Secret (one it created itself included), in its namespace or
// elsewhere, nor list Secrets cluster-wide, nor create them in another
// namespace. The same holds for the signer Lease. A SelfSubjectRulesReview
// shows exactly those Secret rules in kip's namespace and none elsewhere,
// so a right the chart grows anywhere fails the test. (With Impersonate-*
// headers the account can be anyone; that is §1's premise, and the proxy's
// checks, not RBAC, keep those headers kip's own.)
func TestChartSignerSecretException(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	c := cluster(t)
	ns := createNamespace(t, "kip-signer-rights")
	other := createNamespace(t, "kip-signer-elsewhere")
	objs := mustRender(t, "", ns)
	applyRights(t, objs)
	admin := adminClient(t)
	ctx := context.Background()
	for _, s := range []struct{ ns, name string }{{ns, "not-the-signer"}, {other, signerSecret}, {other, "not-the-signer"}} {
		if _, err := admin.CoreV1().Secrets(s.ns).Create(ctx, secret(s.name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "not-the-signer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", serviceAccountKubeconfig(t, c, ns, "kip", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	kip := clientFor(t, cfg)
	// In order: the signer Secret and Lease are created first, as kip
	// does on its first start.
	for _, a := range signerActions(admin, ns, other) {
		t.Run(a.name, func(t *testing.T) {
			checkAccountAction(t, kip, a)
		})
	}
	t.Run("rules in kip's namespace", func(t *testing.T) {
		want := map[string][]string{"create": {"*"}, "get": {signerSecret}, "list": {signerSecret}, "watch": {signerSecret}, "update": {signerSecret}}
		if got := secretRules(t, kip, ns); !equalRules(got, want) {
			t.Errorf("kip's account has these rights on Secrets in its namespace: %v, want %v", got, want)
		}
	})
	t.Run("rules elsewhere", func(t *testing.T) {
		if got := secretRules(t, kip, other); len(got) != 0 {
			t.Errorf("kip's account has these rights on Secrets in another namespace: %v, want none", got)
		}
	})
}

// checkAccountAction runs a and insists on success or on 403.
func checkAccountAction(t *testing.T, kip kubernetes.Interface, a accountAction) {
	t.Helper()
	err := a.do(context.Background(), kip)
	switch {
	case a.allowed && err != nil:
		t.Fatalf("refused, want allowed: %v", err)
	case !a.allowed && err == nil:
		t.Fatal("allowed, want 403")
	case !a.allowed && !apierrors.IsForbidden(err):
		t.Fatalf("%v, want 403", err)
	}
}

// signerActions are the requests of TestChartSignerSecretException.
func signerActions(admin kubernetes.Interface, ns, other string) []accountAction {
	secrets := func(c kubernetes.Interface, n string) corev1client.SecretInterface { return c.CoreV1().Secrets(n) }
	byName := func(name string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: "metadata.name=" + name}
	}
	merge := []byte(`{"metadata":{"labels":{"touched":"yes"}}}`)
	return []accountAction{
		{"create the signer Secret", true, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := secrets(c, ns).Create(ctx, secret(signerSecret), metav1.CreateOptions{})
			return err
		}},
		{"get the signer Secret", true, get(secrets, ns, signerSecret)},
		{"list the signer Secret by name", true, list(secrets, ns, byName(signerSecret))},
		{"watch the signer Secret by name", true, watchOnce(ns, byName(signerSecret))},
		{"update the signer Secret", true, update(admin, secrets, ns, signerSecret)},
		{"patch the signer Secret", false, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := secrets(c, ns).Patch(ctx, signerSecret, types.MergePatchType, merge, metav1.PatchOptions{})
			return err
		}},
		{"delete the signer Secret", false, del(secrets, ns, signerSecret)},
		{"create another Secret (RBAC cannot limit create)", true, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := secrets(c, ns).Create(ctx, secret("created-by-kip"), metav1.CreateOptions{})
			return err
		}},
		{"get the Secret it created", false, get(secrets, ns, "created-by-kip")},
		{"get another Secret", false, get(secrets, ns, "not-the-signer")},
		{"list another Secret by name", false, list(secrets, ns, byName("not-the-signer"))},
		{"list the Secrets of its namespace", false, list(secrets, ns, metav1.ListOptions{})},
		{"watch the Secrets of its namespace", false, watchOnce(ns, metav1.ListOptions{})},
		{"update another Secret", false, update(admin, secrets, ns, "not-the-signer")},
		{"patch another Secret", false, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := secrets(c, ns).Patch(ctx, "not-the-signer", types.MergePatchType, merge, metav1.PatchOptions{})
			return err
		}},
		{"delete another Secret", false, del(secrets, ns, "not-the-signer")},
		{"delete the Secrets of its namespace", false, func(ctx context.Context, c kubernetes.Interface) error {
			return secrets(c, ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}},
		{"get a Secret of the signer's name elsewhere", false, get(secrets, other, signerSecret)},
		{"list it by name elsewhere", false, list(secrets, other, byName(signerSecret))},
		{"update it elsewhere", false, update(admin, secrets, other, signerSecret)},
		{"delete it elsewhere", false, del(secrets, other, signerSecret)},
		{"get another Secret elsewhere", false, get(secrets, other, "not-the-signer")},
		{"create a Secret elsewhere", false, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := secrets(c, other).Create(ctx, secret("created-by-kip"), metav1.CreateOptions{})
			return err
		}},
		{"list Secrets cluster-wide", false, list(secrets, metav1.NamespaceAll, metav1.ListOptions{})},
		{"list the signer Secret by name cluster-wide", false, list(secrets, metav1.NamespaceAll, byName(signerSecret))},
		{"create the signer Lease", true, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: signerLease}}, metav1.CreateOptions{})
			return err
		}},
		{"get and update the signer Lease", true, updateLease(ns, signerLease)},
		{"delete the signer Lease", false, func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoordinationV1().Leases(ns).Delete(ctx, signerLease, metav1.DeleteOptions{})
		}},
		{"get and update another Lease", false, updateLease(ns, "not-the-signer")},
		{"list Leases", false, func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
	}
}

// secretsOf is the Secrets client of one namespace.
type secretsOf func(kubernetes.Interface, string) corev1client.SecretInterface

func get(s secretsOf, ns, name string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := s(c, ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
}

func list(s secretsOf, ns string, opts metav1.ListOptions) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := s(c, ns).List(ctx, opts)
		return err
	}
}

// watchOnce opens a watch and closes it: the answer to opening it is what
// RBAC decides.
func watchOnce(ns string, opts metav1.ListOptions) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		w, err := c.CoreV1().Secrets(ns).Watch(ctx, opts)
		if err != nil {
			return err
		}
		w.Stop()
		return nil
	}
}

// update writes a Secret back with a label added. The read is the
// admin's, so that a refused get does not hide what update alone gets.
func update(admin kubernetes.Interface, s secretsOf, ns, name string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		cur, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading it as the admin: %w", err)
		}
		cur.Labels = map[string]string{"touched": "yes"}
		_, err = s(c, ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}
}

func del(s secretsOf, ns, name string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		return s(c, ns).Delete(ctx, name, metav1.DeleteOptions{})
	}
}

// updateLease reads a Lease and writes it back, as the rotation leader
// does.
func updateLease(ns, name string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		l, err := c.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l.Labels = map[string]string{"touched": "yes"}
		_, err = c.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		return err
	}
}

// secret is an Opaque Secret called name.
func secret(name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"k": []byte("v")}}
}

// secretRules asks, as kip's account, what it may do to core Secrets in
// ns: for each verb the names it may act on, "*" for any.
func secretRules(t *testing.T, kip kubernetes.Interface, ns string) map[string][]string {
	t.Helper()
	review, err := kip.AuthorizationV1().SelfSubjectRulesReviews().Create(context.Background(),
		&authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if review.Status.Incomplete {
		t.Fatalf("the rules review is incomplete: %s", review.Status.EvaluationError)
	}
	got := map[string][]string{}
	for _, r := range review.Status.ResourceRules {
		if !slices.Contains(r.APIGroups, "") && !slices.Contains(r.APIGroups, "*") {
			continue
		}
		if !slices.Contains(r.Resources, "secrets") && !slices.Contains(r.Resources, "*") {
			continue
		}
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{"*"}
		}
		for _, v := range r.Verbs {
			got[v] = append(got[v], names...)
		}
	}
	return got
}

// equalRules compares two verb-to-names maps, ignoring order and
// repetition.
func equalRules(a, b map[string][]string) bool {
	norm := func(m map[string][]string) string {
		var lines []string
		for v, names := range m {
			names = slices.Clone(names)
			sort.Strings(names)
			lines = append(lines, v+"="+strings.Join(slices.Compact(names), ","))
		}
		sort.Strings(lines)
		return strings.Join(lines, ";")
	}
	return norm(a) == norm(b)
}
