package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

// nodeMode is one way kube-apiserver reaches a node's streaming endpoints.
type nodeMode struct {
	name string
	// websocket declares ExtendWebSocketsToKubelet: kube-apiserver then
	// passes WebSocket sessions through to the node. Without it,
	// kube-apiserver converts them to SPDY itself.
	websocket bool
}

var nodeModes = []nodeMode{
	{name: "apiserver-converts", websocket: false},
	{name: "node-speaks-websocket", websocket: true},
}

// testNodes are the package's test kubelets, one per nodeMode, started on
// first use so that tests without Pods never wait for them.
var testNodes struct {
	once  sync.Once
	err   error
	nodes map[bool]*testnode.Node // by nodeMode.websocket
}

func nodeFor(t *testing.T, mode nodeMode) *testnode.Node {
	t.Helper()
	testNodes.once.Do(func() {
		testNodes.nodes = map[bool]*testnode.Node{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin := adminClient(t)
		for _, m := range nodeModes {
			n, err := testnode.Start(ctx, testnode.Options{
				Client: admin, Name: harness.UniqueName("node-" + m.name), DeclareWebSocketFeature: m.websocket, Log: nodeLog(),
			})
			if err != nil {
				testNodes.err = fmt.Errorf("starting the %s test node: %w", m.name, err)
				return
			}
			testNodes.nodes[m.websocket] = n
		}
	})
	if testNodes.err != nil {
		t.Fatal(testNodes.err)
	}
	return testNodes.nodes[mode.websocket]
}

// nodeLog shows what the nodes do when the tests run verbosely enough to
// want it.
func nodeLog() io.Writer {
	if os.Getenv("KIP_TEST_NODE_LOG") != "" {
		return os.Stderr
	}
	return nil
}

// stopTestNodes stops the nodes that nodeFor started; TestMain calls it
// before the control plane goes.
func stopTestNodes() {
	for _, n := range testNodes.nodes {
		n.Stop()
	}
}

// transport is how kubectl carries exec, attach and port-forward to kip.
type transport struct {
	name string
	env  []string
}

var transports = []transport{
	{name: "websocket"}, // kubectl's default
	{name: "spdy", env: []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
}

// forEachMode runs f for every transport against every kind of node.
func forEachMode(t *testing.T, f func(t *testing.T, tr transport, mode nodeMode)) {
	for _, mode := range nodeModes {
		for _, tr := range transports {
			t.Run(tr.name+"/"+mode.name, func(t *testing.T) { f(t, tr, mode) })
		}
	}
}

// streamingRules let a user use every streaming verb on a namespace's Pods.
var streamingRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/attach", "pods/portforward"}, Verbs: []string{"create", "get"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}

// streamingUser returns a kubeconfig, through kip, for a new user with
// streamingRules in ns, once the upstream applies them.
func streamingUser(t *testing.T, ns string) string {
	t.Helper()
	user := harness.UniqueName("streamer")
	grant(t, ns, userSubject(user), streamingRules...)
	kubeconfig := userKubeconfig(t, user)
	harness.Eventually(t, 30*time.Second, func() error {
		res := kubectl(t, kubeconfig, "auth", "can-i", "create", "pods", "--subresource=exec", "-n", ns)
		if res.ExitCode != 0 {
			return errorf("can-i create pods/exec: %s%s", res.Stdout, res.Stderr)
		}
		return nil
	})
	return kubeconfig
}

// runPod creates a Pod named name on node and waits until the node reports
// it running. The Pod is deleted when the test ends.
func runPod(t *testing.T, ns string, node *testnode.Node, pod *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	pods := adminClient(t).CoreV1().Pods(ns)
	pod.Spec.NodeName = node.Name()
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Image == "" {
			pod.Spec.Containers[i].Image = "testnode.invalid/ignored"
		}
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(context.Background(), pod.Name, metav1.DeleteOptions{}) })
	harness.Eventually(t, 30*time.Second, func() error {
		got, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.Phase != corev1.PodRunning {
			return errorf("pod %s/%s is %q", ns, pod.Name, got.Status.Phase)
		}
		return nil
	})
}

// podWith is a Pod with one container, main, running argv (nothing when
// argv is empty).
func podWith(name string, argv ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Command: argv}},
		},
	}
}
