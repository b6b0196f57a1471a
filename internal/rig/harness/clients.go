package harness

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
)

// UniqueName returns a DNS-1123 name unique to this run, for users and
// namespaces, so that tests sharing one cluster never meet.
func UniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

// Client is a clientset for cfg, or the test fails.
func Client(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// AdminClient reaches the stack's kube-apiserver directly as its admin.
func AdminClient(t testing.TB, stack *devstack.Stack) kubernetes.Interface {
	t.Helper()
	return Client(t, stack.Cluster.AdminConfig)
}

// CreateNamespace makes a namespace for one test, with the default
// ServiceAccount that kube-controller-manager would make (the rig runs
// none, and Pods need it), and removes it when the test ends.
func CreateNamespace(t testing.TB, admin kubernetes.Interface) string {
	t.Helper()
	ctx := context.Background()
	ns := UniqueName("test")
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// UserKubeconfig writes a kubeconfig that reaches the cluster through the
// stack's kip as user in groups, with a certificate from the cluster's
// client CA.
func UserKubeconfig(t testing.TB, stack *devstack.Stack, user string, groups ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := stack.WriteUserKubeconfig(path, user, groups...); err != nil {
		t.Fatal(err)
	}
	return path
}

// KubectlResult is what one run of the real kubectl printed.
type KubectlResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// Kubectl runs the kubectl at bin with kubeconfig, env added to this
// process's environment, stdin and args, within two minutes. A non-zero
// exit is a result; only failing to run kubectl fails the test.
func Kubectl(t testing.TB, bin, kubeconfig string, env []string, stdin string, args ...string) KubectlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := KubectlResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if exitErr, ok := err.(*exec.ExitError); ok {
		res.ExitCode = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running kubectl %v: %v", args, err)
	}
	return res
}
