package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// kubectl runs the pinned kubectl with kubeconfig and args.
func kubectl(t *testing.T, kubeconfig string, args ...string) harness.KubectlResult {
	t.Helper()
	return kubectlEnv(t, kubeconfig, nil, "", args...)
}

// kubectlEnv is kubectl with extra environment variables and standard input.
func kubectlEnv(t *testing.T, kubeconfig string, env []string, stdin string, args ...string) harness.KubectlResult {
	t.Helper()
	return harness.Kubectl(t, stack.Binaries.Kubectl, kubeconfig, env, stdin, args...)
}

// mustKubectl runs kubectl and fails the test unless it exits 0.
func mustKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	res := kubectl(t, kubeconfig, args...)
	if res.ExitCode != 0 {
		t.Fatalf("kubectl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.ExitCode, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// userKubeconfig writes a kubeconfig that reaches the cluster through kip as
// user in groups, with a certificate from the cluster's client CA.
func userKubeconfig(t *testing.T, user string, groups ...string) string {
	t.Helper()
	return harness.UserKubeconfig(t, stack, user, groups...)
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	return harness.AdminClient(t, stack)
}

// createNamespace makes a namespace for one test and removes it after.
func createNamespace(t *testing.T) string {
	t.Helper()
	return harness.CreateNamespace(t, adminClient(t))
}

// grant creates a Role with rules in ns and binds it to subject.
func grant(t *testing.T, ns string, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	admin := adminClient(t)
	name := harness.UniqueName("role")
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// grantCluster is grant with a ClusterRole and ClusterRoleBinding.
func grantCluster(t *testing.T, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	admin := adminClient(t)
	name := harness.UniqueName("clusterrole")
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = admin.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func groupSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// auditEvents returns the upstream's ResponseComplete audit events whose
// request URI contains marker, once at least one is there. Only that stage
// carries the impersonated user and the response status.
func auditEvents(t *testing.T, marker string) []auditv1.Event {
	t.Helper()
	var found []auditv1.Event
	harness.Eventually(t, 30*time.Second, func() error {
		found = nil
		for _, ev := range readAudit(t, auditLogPath, marker) {
			if ev.Stage == auditv1.StageResponseComplete {
				found = append(found, ev)
			}
		}
		if len(found) == 0 {
			return fmt.Errorf("no audit event for %q yet", marker)
		}
		return nil
	})
	return found
}

// readAudit returns the events of the JSON audit log at path whose request
// URI contains marker.
func readAudit(t *testing.T, path, marker string) []auditv1.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var found []auditv1.Event
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.Contains(line, []byte(marker)) {
			continue
		}
		var ev auditv1.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			continue // a line still being written
		}
		if strings.Contains(ev.RequestURI, marker) {
			found = append(found, ev)
		}
	}
	return found
}
