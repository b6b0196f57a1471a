package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"
)

// kubectlResult is what one run of the real kubectl printed.
type kubectlResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// kubectl runs the pinned kubectl with kubeconfig and args.
func kubectl(t *testing.T, kubeconfig string, args ...string) kubectlResult {
	t.Helper()
	return kubectlEnv(t, kubeconfig, nil, "", args...)
}

// kubectlEnv is kubectl with extra environment variables and standard input.
func kubectlEnv(t *testing.T, kubeconfig string, env []string, stdin string, args ...string) kubectlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stack.Binaries.Kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := kubectlResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if exitErr, ok := err.(*exec.ExitError); ok {
		res.ExitCode = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running kubectl %v: %v", args, err)
	}
	return res
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
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := stack.WriteUserKubeconfig(path, user, groups...); err != nil {
		t.Fatal(err)
	}
	return path
}

// uniqueName returns a DNS-1123 name unique to this run.
func uniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(stack.Cluster.AdminConfig)
}

// createNamespace makes a namespace for one test, with the default
// ServiceAccount that kube-controller-manager would normally create, and
// removes it when the test ends.
func createNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := adminClient(t)
	ns := uniqueName("test")
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}

// grant creates a Role with rules in ns and binds it to subject.
func grant(t *testing.T, ns string, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	admin := adminClient(t)
	name := uniqueName("role")
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
	name := uniqueName("clusterrole")
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

// eventually polls cond until it returns nil or the time is up, then fails
// with cond's last error. It waits for an outcome; it asserts no timing.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// auditEvents returns the upstream's ResponseComplete audit events whose
// request URI contains marker, once at least one is there. Only that stage
// carries the impersonated user and the response status.
func auditEvents(t *testing.T, marker string) []auditv1.Event {
	t.Helper()
	var found []auditv1.Event
	eventually(t, 30*time.Second, func() error {
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
