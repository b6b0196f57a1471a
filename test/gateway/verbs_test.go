package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

// editConfigMaps lets a user read and write ConfigMaps.
var editConfigMaps = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}}

// streamingRules let a user use every streaming verb on Pods.
var streamingRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/attach", "pods/portforward"}, Verbs: []string{"create", "get"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}

// transport is how kubectl carries exec and port-forward to kip.
type transport struct {
	name string
	env  []string
}

var transports = []transport{
	{name: "websocket"}, // kubectl's default
	{name: "spdy", env: []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
}

// clusterUser grants a new user rules in ns on every cluster in names and
// returns the user with a kubeconfig per cluster, once each cluster's RBAC
// lets the user do what canI asks.
func clusterUser(t *testing.T, ns string, names []string, canI []string, rules ...rbacv1.PolicyRule) (string, map[string]string) {
	t.Helper()
	user := harness.UniqueName("dev")
	kubeconfigs := map[string]string{}
	for _, name := range names {
		grant(t, name, ns, userSubject(user), rules...)
		kubeconfigs[name] = userKubeconfig(t, name, user)
	}
	for _, name := range names {
		harness.Eventually(t, 30*time.Second, func() error {
			res := kubectl(t, kubeconfigs[name], nil, "", append([]string{"auth", "can-i", "-n", ns}, canI...)...)
			if res.ExitCode != 0 {
				return errorf("%s: can-i %v: %s%s", name, canI, res.Stdout, res.Stderr)
			}
			return nil
		})
	}
	return user, kubeconfigs
}

// TestReadWriteVerbs drives each of the three clusters through kip with
// the real kubectl and client-go at https://kip/clusters/<name>: apply
// (create, then patch), get, watch, and raw GETs over HTTP/2 and HTTP/1.1.
// Every cluster has the same namespace and object names, and each object
// says which cluster holds it, so only an answer from the named cluster
// passes.
func TestReadWriteVerbs(t *testing.T) {
	ns := namespaceOn(t, clusterNames...)
	user, kubeconfigs := clusterUser(t, ns, clusterNames, []string{"patch", "configmaps"}, editConfigMaps)
	cert := userTLS(t, user)
	for _, name := range clusterNames {
		t.Run(name, func(t *testing.T) {
			kubeconfig := kubeconfigs[name]

			t.Run("apply and get", func(t *testing.T) {
				for round := 1; round <= 2; round++ {
					manifest := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: %s\ndata:\n  cluster: %s\n  round: %q\n", ns, name, fmt.Sprint(round))
					mustKubectl(t, kubeconfig, nil, manifest, "apply", "-f", "-")
					got := mustKubectl(t, kubeconfig, nil, "", "get", "configmap", "applied", "-n", ns, "-o", "jsonpath={.data.cluster}/{.data.round}")
					if want := fmt.Sprintf("%s/%d", name, round); got != want {
						t.Fatalf("kubectl get through /clusters/%s read %q, want %q", name, got, want)
					}
				}
			})

			t.Run("watch", func(t *testing.T) {
				client := kubernetes.NewForConfigOrDie(userConfig(t, name, user))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				w, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer w.Stop()
				configMap(t, name, ns, "watched")
				for {
					select {
					case ev, ok := <-w.ResultChan():
						if !ok {
							t.Fatal("the watch ended before it showed ConfigMap watched")
						}
						cm, isCM := ev.Object.(*corev1.ConfigMap)
						if !isCM {
							t.Fatalf("the watch sent %s %T: %+v", ev.Type, ev.Object, ev.Object)
						}
						if cm.Data["cluster"] != name {
							t.Fatalf("a watch through /clusters/%s sent %s of %s from cluster %q", name, ev.Type, cm.Name, cm.Data["cluster"])
						}
						if ev.Type == watch.Added && cm.Name == "watched" {
							return
						}
					case <-ctx.Done():
						t.Fatal("the watch never showed ConfigMap watched")
					}
				}
			})

			t.Run("protocols", func(t *testing.T) {
				for _, proto := range []struct{ alpn, want string }{{"h2", "HTTP/2.0"}, {"http/1.1", "HTTP/1.1"}} {
					a := mustGet(t, gw.httpClient(cert, proto.alpn), "/clusters/"+name+configMapPath(ns, "applied"), "")
					var cm corev1.ConfigMap
					if a.code != 200 || a.proto != proto.want || json.Unmarshal([]byte(a.body), &cm) != nil || cm.Data["cluster"] != name {
						t.Fatalf("GET over %s: %s; want 200 over %s from cluster %s", proto.alpn, a, proto.want, name)
					}
				}
			})
		})
	}

	t.Run("each cluster holds its own objects", func(t *testing.T) {
		for _, name := range clusterNames {
			cm, err := gw.members[name].admin.CoreV1().ConfigMaps(ns).Get(context.Background(), "applied", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["cluster"] != name || cm.Data["round"] != "2" {
				t.Errorf("cluster %s holds %v, want cluster=%s round=2", name, cm.Data, name)
			}
		}
	})

	t.Run("kip's audit log names the cluster", func(t *testing.T) {
		seen := map[string]int{}
		for _, ev := range kipAuditEvents(t, "/namespaces/"+ns+"/configmaps/applied") {
			if ev.User.Username != user {
				continue
			}
			cluster, ok := ev.Annotations["kip.dev/cluster"]
			if !ok {
				t.Fatalf("kip's audit event for %s %s has no kip.dev/cluster annotation: %v", ev.Verb, ev.RequestURI, ev.Annotations)
			}
			seen[cluster]++
		}
		for _, name := range clusterNames {
			if seen[name] == 0 {
				t.Errorf("kip's audit log shows no request of %s to cluster %s; by cluster: %v", user, name, seen)
			}
		}
		if len(seen) != len(clusterNames) {
			t.Errorf("kip's audit log names clusters %v, want exactly %v", seen, clusterNames)
		}
	})
}

// kipAuditEvents are kip's own ResponseComplete audit events whose request
// URI contains marker.
func kipAuditEvents(t *testing.T, marker string) []auditv1.Event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(gw.dir, "kip", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var found []auditv1.Event
	for _, line := range bytes.Split(data, []byte("\n")) {
		var ev auditv1.Event
		if json.Unmarshal(line, &ev) == nil && ev.Stage == auditv1.StageResponseComplete && strings.Contains(ev.RequestURI, marker) {
			found = append(found, ev)
		}
	}
	return found
}

// streamingClusters are the clusters with a test kubelet.
var streamingClusters = []string{alpha, beta}

// TestStreamingVerbs proves logs, exec and port-forward through kip on two
// clusters, over WebSocket and SPDY, and cp on one. alpha's node speaks
// WebSocket itself, beta's gets SPDY from its kube-apiserver. Pods of the
// same name run on both clusters, each with CLUSTER set to its cluster's
// name, and each node counts what reached it: a session that went to the
// other cluster shows.
func TestStreamingVerbs(t *testing.T) {
	ns := namespaceOn(t, streamingClusters...)
	user, kubeconfigs := clusterUser(t, ns, streamingClusters, []string{"create", "pods", "--subresource=exec"}, streamingRules...)
	for _, name := range streamingClusters {
		t.Run(name, func(t *testing.T) {
			kubeconfig := kubeconfigs[name]

			t.Run("logs", func(t *testing.T) {
				runPod(t, name, ns, clusterPod("logs", name, 0))
				harness.Eventually(t, 30*time.Second, func() error {
					res := kubectl(t, kubeconfig, nil, "", "logs", "-n", ns, "logs")
					if res.ExitCode != 0 || res.Stdout != "hello from "+name+"\n" {
						return errorf("kubectl logs through /clusters/%s: exit %d, %q %s; want %q", name, res.ExitCode, res.Stdout, res.Stderr, "hello from "+name+"\n")
					}
					return nil
				})
			})

			for _, tr := range transports {
				t.Run("exec/"+tr.name, func(t *testing.T) {
					pod := "exec-" + tr.name
					runPod(t, name, ns, clusterPod(pod, name, 0))
					before := nodeStats(ns, pod)
					res := kubectl(t, kubeconfig, tr.env, "", "exec", "-n", ns, pod, "--", "sh", "-c", `echo "$CLUSTER"; echo to-stderr >&2; exit 7`)
					if res.ExitCode != 7 || res.Stdout != name+"\n" || !strings.Contains(res.Stderr, "to-stderr") {
						t.Fatalf("want exit 7, stdout %q, stderr to-stderr; got exit %d\nstdout: %q\nstderr: %q", name+"\n", res.ExitCode, res.Stdout, res.Stderr)
					}
					assertReachedOnly(t, name, ns, pod, before, func(s testnode.Stats) int { return s.Exec }, tr)
					assertRecorded(t, recording.Identity{User: user, Cluster: name, Namespace: ns, Pod: pod, Subresource: "exec"}, name+"\n")
				})

				t.Run("port-forward/"+tr.name, func(t *testing.T) {
					pod := "forward-" + tr.name
					echo := harness.StartEchoServer(t)
					runPod(t, name, ns, clusterPod(pod, name, echo.Port))
					before := nodeStats(ns, pod)
					local := startPortForward(t, kubeconfig, tr.env, ns, pod, echo.Port)
					sent := harness.EchoOnNewConn(t, local, 4<<20, 7)
					if got := echo.NextReceived(t); got != sent {
						t.Fatalf("the server received sha256 %x, kubectl was sent %x", got, sent)
					}
					assertReachedOnly(t, name, ns, pod, before, func(s testnode.Stats) int { return s.PortForward }, tr)
				})
			}
		})
	}

	t.Run("cp", func(t *testing.T) {
		kubeconfig := kubeconfigs[alpha]
		runPod(t, alpha, ns, clusterPod("copy", alpha, 0))
		dir := t.TempDir()
		data := harness.RandomBytes(3<<20, 3)
		if err := os.WriteFile(filepath.Join(dir, "up.bin"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		mustKubectl(t, kubeconfig, nil, "", "cp", "-n", ns, filepath.Join(dir, "up.bin"), ns+"/copy:up.bin")
		sum := sha256.Sum256(data)
		out := mustKubectl(t, kubeconfig, nil, "", "exec", "-n", ns, "copy", "--", "sh", "-c", `echo "$CLUSTER"; sha256sum up.bin`)
		if want := alpha + "\n" + hex.EncodeToString(sum[:]) + "  up.bin\n"; out != want {
			t.Fatalf("in the container: %q, want %q", out, want)
		}
		mustKubectl(t, kubeconfig, nil, "", "cp", "-n", ns, ns+"/copy:up.bin", filepath.Join(dir, "down.bin"))
		if got, err := os.ReadFile(filepath.Join(dir, "down.bin")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copied back %d bytes (%v) that differ from the %d sent", len(got), err, len(data))
		}
	})
}

// clusterPod is a Pod whose one container prints "hello from <cluster>",
// with CLUSTER in its environment and, when port is set, that port
// declared.
func clusterPod(name, cluster string, port int) *corev1.Pod {
	c := corev1.Container{
		Name: "main", Image: "testnode.invalid/ignored",
		Command: []string{"sh", "-c", `echo "hello from $CLUSTER"`},
		Env:     []corev1.EnvVar{{Name: "CLUSTER", Value: cluster}},
	}
	if port != 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

// runPod runs pod on cluster's test node and waits until it is running.
func runPod(t *testing.T, cluster, ns string, pod *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	m := gw.members[cluster]
	pods := m.admin.CoreV1().Pods(ns)
	pod.Spec.NodeName = m.node.Name()
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
			return errorf("pod %s/%s on %s is %q", ns, pod.Name, cluster, got.Status.Phase)
		}
		return nil
	})
}

// nodeStats is what each streaming cluster's node has counted for pod
// ns/name so far. Pods of the same name run on both clusters.
func nodeStats(ns, pod string) map[string]testnode.Stats {
	stats := map[string]testnode.Stats{}
	for _, name := range streamingClusters {
		stats[name] = gw.members[name].node.Stats(ns, pod)
	}
	return stats
}

// assertReachedOnly checks that the session reached cluster's node since
// before, and no other cluster's, and which way: as WebSocket only when
// kubectl used WebSocket and the node declared it speaks it, else as SPDY.
func assertReachedOnly(t *testing.T, cluster, ns, pod string, before map[string]testnode.Stats, count func(testnode.Stats) int, tr transport) {
	t.Helper()
	after := nodeStats(ns, pod)
	for _, other := range streamingClusters {
		added := count(after[other]) - count(before[other])
		switch {
		case other == cluster && added == 0:
			t.Fatalf("the session never reached %s's node: %+v", cluster, after[other])
		case other != cluster && added != 0:
			t.Fatalf("a session through /clusters/%s reached %s's node: %+v, before %+v", cluster, other, after[other], before[other])
		}
	}
	websocket := after[cluster].WebSocket - before[cluster].WebSocket
	passedThrough := tr.env == nil && cluster == alpha // alpha's node declares WebSocket
	switch {
	case passedThrough && websocket == 0:
		t.Fatalf("%s's node declared %s, yet kube-apiserver converted every WebSocket session to SPDY: %+v", cluster, testnode.WebSocketFeature, after[cluster])
	case !passedThrough && websocket != 0:
		t.Fatalf("%s's node saw %d WebSocket sessions, want SPDY only: %+v", cluster, websocket, after[cluster])
	}
}
