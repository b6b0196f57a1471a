package integration

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// soakIdle is how long soak tests leave a long-running request idle: longer
// than the five minutes after which badly configured proxies and load
// balancers drop a quiet connection.
const soakIdle = 6 * time.Minute

func requireSoak(t *testing.T) {
	t.Helper()
	if os.Getenv("KIP_SOAK") == "" {
		t.Skip("soak test: run with `make soak` (KIP_SOAK=1)")
	}
}

// TestSoakIdleWatchStaysOpen proves a watch through kip survives more than
// five idle minutes, over HTTP/1.1 and HTTP/2, and still delivers the next
// event. kip's short-request timeout must not apply to it.
func TestSoakIdleWatchStaysOpen(t *testing.T) {
	requireSoak(t)
	ns := createNamespace(t)
	user := harness.UniqueName("idle")
	grant(t, ns, userSubject(user), configMapRules...)
	ctx, cancel := context.WithTimeout(context.Background(), soakIdle+2*time.Minute)
	defer cancel()

	watches := map[string]watch.Interface{}
	for _, proto := range []string{"http/1.1", "h2"} {
		cfg := stack.UserConfigFor(user)
		cfg.NextProtos = []string{proto}
		// kube-apiserver ends a watch after 30 to 60 minutes by default, far
		// beyond soakIdle.
		w, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watches[proto] = w
	}
	time.Sleep(soakIdle)

	name := harness.UniqueName("after-idle")
	if _, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for proto, w := range watches {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("%s: the watch closed while idle", proto)
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); !isCM || cm.Name != name {
				t.Fatalf("%s: unexpected event %v %v", proto, ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no event after %s idle", proto, soakIdle)
		}
	}
}

// TestSoakIdleExecStaysOpen proves an exec session through kip survives
// more than five idle minutes, over WebSocket and SPDY, against nodes with
// and without WebSocket pass-through, and still carries stdin and stdout.
func TestSoakIdleExecStaysOpen(t *testing.T) {
	requireSoak(t)
	ns := createNamespace(t)
	kubeconfig := streamingUser(t, ns)
	sessions := map[string]*kubectlProcess{}
	for _, mode := range nodeModes {
		for _, tr := range transports {
			pod := harness.UniqueName("idle")
			runPod(t, ns, nodeFor(t, mode), podWith(pod))
			k := startKubectl(t, kubeconfig, tr.env, "exec", "-i", "-n", ns, pod, "--",
				"sh", "-c", `echo ready; read line; echo "got $line"`)
			k.WaitForOutput(t, "ready")
			sessions[tr.name+"/"+mode.name] = k
		}
	}
	time.Sleep(soakIdle)
	for name, k := range sessions {
		if _, err := io.WriteString(k.Stdin, "after-idle\n"); err != nil {
			t.Fatalf("%s: writing after %s idle: %v", name, soakIdle, err)
		}
		k.WaitForOutput(t, "got after-idle")
		if code := k.Wait(t); code != 0 {
			t.Fatalf("%s: kubectl exited %d after idling: %s", name, code, k.Stderr)
		}
	}
}
