package integration

import (
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

var configMapRules = []rbacv1.PolicyRule{{
	APIGroups: []string{""},
	Resources: []string{"configmaps"},
	Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
}}

// TestRBACFollowsTheCertificateUser proves that the upstream's RBAC decides
// for the user kip authenticated: denied before a binding, allowed after,
// whether the binding names the user or one of its groups.
func TestRBACFollowsTheCertificateUser(t *testing.T) {
	for _, tc := range []struct {
		name    string
		user    string
		groups  []string
		subject func(user string, groups []string) rbacv1.Subject
	}{
		{"user binding", harness.UniqueName("user"), nil, func(u string, _ []string) rbacv1.Subject { return userSubject(u) }},
		{"group binding", harness.UniqueName("member"), []string{harness.UniqueName("team")}, func(_ string, g []string) rbacv1.Subject { return groupSubject(g[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := createNamespace(t)
			kubeconfig := userKubeconfig(t, tc.user, tc.groups...)

			res := kubectl(t, kubeconfig, "get", "configmaps", "-n", ns)
			if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Forbidden") || !strings.Contains(res.Stderr, `User "`+tc.user+`"`) {
				t.Fatalf("before the binding: want Forbidden for %s, got exit %d, stderr %q", tc.user, res.ExitCode, res.Stderr)
			}

			grant(t, ns, tc.subject(tc.user, tc.groups), configMapRules...)
			harness.Eventually(t, 30*time.Second, func() error {
				if r := kubectl(t, kubeconfig, "get", "configmaps", "-n", ns); r.ExitCode != 0 {
					return errorf("after the binding: exit %d: %s", r.ExitCode, r.Stderr)
				}
				return nil
			})
		})
	}
}

// TestEveryWriteVerb drives create, get, list, update, patch, server-side
// apply and delete through kip with kubectl.
func TestEveryWriteVerb(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("writer")
	kubeconfig := userKubeconfig(t, user)
	grant(t, ns, userSubject(user), configMapRules...)

	mustKubectl(t, kubeconfig, "-n", ns, "create", "configmap", "cm", "--from-literal=a=1")
	if out := mustKubectl(t, kubeconfig, "-n", ns, "get", "configmap", "cm", "-o", "jsonpath={.data.a}"); out != "1" {
		t.Fatalf("get after create: data.a = %q", out)
	}
	if out := mustKubectl(t, kubeconfig, "-n", ns, "get", "configmaps", "-o", "name"); !strings.Contains(out, "configmap/cm") {
		t.Fatalf("list: %q", out)
	}

	// update: a full replace of the object read back.
	obj := mustKubectl(t, kubeconfig, "-n", ns, "get", "configmap", "cm", "-o", "json")
	obj = strings.Replace(obj, `"a": "1"`, `"a": "2"`, 1)
	if r := kubectlEnv(t, kubeconfig, nil, obj, "-n", ns, "replace", "-f", "-"); r.ExitCode != 0 {
		t.Fatalf("replace: %s", r.Stderr)
	}
	mustKubectl(t, kubeconfig, "-n", ns, "patch", "configmap", "cm", "--type=merge", "-p", `{"data":{"b":"3"}}`)

	applied := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"2\"\n  b: \"3\"\n  c: \"4\"\n"
	if r := kubectlEnv(t, kubeconfig, nil, applied, "-n", ns, "apply", "--server-side", "--force-conflicts", "--field-manager=kip-test", "-f", "-"); r.ExitCode != 0 {
		t.Fatalf("server-side apply: %s", r.Stderr)
	}
	got := mustKubectl(t, kubeconfig, "-n", ns, "get", "configmap", "cm", "-o", "jsonpath={.data.a}{.data.b}{.data.c}")
	if got != "234" {
		t.Fatalf("after replace, patch and apply: data = %q, want 234", got)
	}
	managers := mustKubectl(t, kubeconfig, "-n", ns, "get", "configmap", "cm", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}")
	if !strings.Contains(managers, "kip-test") {
		t.Fatalf("server-side apply left no kip-test field manager: %q", managers)
	}

	mustKubectl(t, kubeconfig, "-n", ns, "delete", "configmap", "cm")
	if r := kubectl(t, kubeconfig, "-n", ns, "get", "configmap", "cm"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "NotFound") {
		t.Fatalf("get after delete: exit %d, %s", r.ExitCode, r.Stderr)
	}
}
