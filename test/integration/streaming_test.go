package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

// TestExec proves kubectl exec through kip, over WebSocket and SPDY, to a
// node that kube-apiserver converts for and to one that speaks WebSocket
// itself: output and exit codes come back, several megabytes of stdin
// arrive intact, and a terminal works, resized to the client's.
func TestExec(t *testing.T) {
	ns := createNamespace(t)
	kubeconfig := streamingUser(t, ns)
	forEachMode(t, func(t *testing.T, tr transport, mode nodeMode) {
		node := nodeFor(t, mode)
		pod := harness.UniqueName("exec")
		runPod(t, ns, node, podWith(pod))

		t.Run("exit code", func(t *testing.T) {
			res := kubectlEnv(t, kubeconfig, tr.env, "", "exec", "-n", ns, pod, "--",
				"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
			if res.ExitCode != 7 || res.Stdout != "to-stdout\n" || !strings.Contains(res.Stderr, "to-stderr") {
				t.Fatalf("want exit 7, stdout to-stdout, stderr to-stderr; got exit %d\nstdout: %q\nstderr: %q", res.ExitCode, res.Stdout, res.Stderr)
			}
		})

		t.Run("8MB of stdin", func(t *testing.T) {
			data := harness.RandomBytes(8<<20, 1)
			sum := sha256.Sum256(data)
			res := kubectlEnv(t, kubeconfig, tr.env, string(data), "exec", "-i", "-n", ns, pod, "--", "sha256sum")
			if res.ExitCode != 0 {
				t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			if got, want := strings.Fields(res.Stdout), hex.EncodeToString(sum[:]); len(got) == 0 || got[0] != want {
				t.Fatalf("the container read sha256 %q, kubectl sent %s", res.Stdout, want)
			}
		})

		t.Run("terminal", func(t *testing.T) {
			k := startKubectlOnTerminal(t, kubeconfig, tr.env, pty.Winsize{Rows: 41, Cols: 123},
				"exec", "-i", "-t", "-n", ns, pod, "--",
				"sh", "-c", `test -t 0 && echo ready; read line; stty size; echo "got $line"; exit 3`)
			k.WaitForOutput(t, "ready")
			if _, err := io.WriteString(k.Stdin, "hello\r"); err != nil {
				t.Fatal(err)
			}
			if code := k.Wait(t); code != 3 {
				t.Fatalf("kubectl exited %d, want 3; output:\n%s", code, k.Stdout)
			}
			for _, want := range []string{"41 123", "got hello"} {
				if !strings.Contains(k.Stdout.String(), want) {
					t.Fatalf("the terminal shows no %q:\n%s", want, k.Stdout)
				}
			}
		})

		assertNodeTransport(t, node, ns, pod, tr, mode)
	})
}

// TestAttachAndLogsFollow proves that kubectl attach and kubectl logs -f
// through kip see each line as the container writes it: the container
// writes line N+1 only after the test has seen line N arrive on both.
func TestAttachAndLogsFollow(t *testing.T) {
	ns := createNamespace(t)
	kubeconfig := streamingUser(t, ns)
	forEachMode(t, func(t *testing.T, tr transport, mode nodeMode) {
		node := nodeFor(t, mode)
		pod := harness.UniqueName("lines")
		spec := podWith(pod, "sh", "-c", `while read n; do echo "line $n"; echo "err $n" >&2; done`)
		spec.Spec.Containers[0].Stdin = true
		runPod(t, ns, node, spec)

		logs := startKubectl(t, kubeconfig, nil, "logs", "-f", "-n", ns, pod)
		attach := startKubectl(t, kubeconfig, tr.env, "attach", "-i", "-n", ns, pod)
		for n := 1; n <= 5; n++ {
			if _, err := fmt.Fprintf(attach.Stdin, "%d\n", n); err != nil {
				t.Fatal(err)
			}
			line := fmt.Sprintf("line %d\n", n)
			attach.WaitForOutput(t, line)
			attach.WaitForError(t, fmt.Sprintf("err %d\n", n))
			logs.WaitForOutput(t, line)
		}

		stats := node.Stats(ns, pod)
		if stats.Attach != 1 || stats.Logs != 1 {
			t.Fatalf("the node saw %d attach and %d log requests, want one of each", stats.Attach, stats.Logs)
		}
		assertNodeTransport(t, node, ns, pod, tr, mode)
	})
}

// TestPortForward proves kubectl port-forward through kip: 100 MB go to a
// server in the Pod and come back intact on one connection, and two
// connections at once each get their own bytes back.
func TestPortForward(t *testing.T) {
	ns := createNamespace(t)
	kubeconfig := streamingUser(t, ns)
	forEachMode(t, func(t *testing.T, tr transport, mode nodeMode) {
		node := nodeFor(t, mode)
		echo := harness.StartEchoServer(t)
		pod := harness.UniqueName("forward")
		runPod(t, ns, node, podListeningOn(pod, echo.Port))
		local := startPortForward(t, kubeconfig, tr.env, ns, pod, echo.Port)

		t.Run("100MB each way", func(t *testing.T) {
			start := time.Now()
			sent := harness.EchoOnNewConn(t, local, 100<<20, 2)
			if got := echo.NextReceived(t); got != sent {
				t.Fatalf("the server received sha256 %x, kubectl was sent %x", got, sent)
			}
			t.Logf("100 MB each way in %s", time.Since(start).Round(time.Millisecond))
		})

		t.Run("two connections at once", func(t *testing.T) {
			var wg sync.WaitGroup
			sums := make([][32]byte, 2)
			for i := range sums {
				wg.Go(func() { sums[i] = harness.EchoOnNewConn(t, local, 8<<20, uint64(10+i)) })
			}
			wg.Wait()
			got := [][32]byte{echo.NextReceived(t), echo.NextReceived(t)}
			if (got[0] != sums[0] || got[1] != sums[1]) && (got[0] != sums[1] || got[1] != sums[0]) {
				t.Fatalf("the server received %x, the clients sent %x", got, sums)
			}
		})

		assertNodeTransport(t, node, ns, pod, tr, mode)
	})
}

// TestPortForwardSurvivesIdle proves a forward, and a connection through
// it, still carry data after 70 seconds without any: longer than the usual
// 60-second idle and request timeouts along the path. The modes wait side
// by side.
func TestPortForwardSurvivesIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 70 seconds")
	}
	ns := createNamespace(t)
	kubeconfig := streamingUser(t, ns)
	forEachMode(t, func(t *testing.T, tr transport, mode nodeMode) {
		t.Parallel()
		node := nodeFor(t, mode)
		echo := harness.StartEchoServer(t)
		pod := harness.UniqueName("idle")
		runPod(t, ns, node, podListeningOn(pod, echo.Port))
		local := startPortForward(t, kubeconfig, tr.env, ns, pod, echo.Port)

		conn, err := net.Dial("tcp", local)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		harness.EchoOnConn(t, conn, 1<<20, 20)
		time.Sleep(70 * time.Second)
		harness.EchoOnConn(t, conn, 1<<20, 21)
		harness.EchoOnNewConn(t, local, 1<<20, 22)
	})
}

// TestCopy proves kubectl cp through kip, both ways, for a file and for a
// directory tree; kubectl cp is tar over exec.
func TestCopy(t *testing.T) {
	ns := createNamespace(t)
	kubeconfig := streamingUser(t, ns)
	forEachMode(t, func(t *testing.T, tr transport, mode nodeMode) {
		node := nodeFor(t, mode)
		pod := harness.UniqueName("copy")
		runPod(t, ns, node, podWith(pod))
		cp := func(from, to string) {
			t.Helper()
			if res := kubectlEnv(t, kubeconfig, tr.env, "", "cp", "-n", ns, from, to); res.ExitCode != 0 {
				t.Fatalf("kubectl cp %s %s: exit %d: %s%s", from, to, res.ExitCode, res.Stdout, res.Stderr)
			}
		}
		remote := func(path string) string { return ns + "/" + pod + ":" + path }

		dir := t.TempDir()
		data := harness.RandomBytes(3<<20, 3)
		writeFile(t, filepath.Join(dir, "up.bin"), data)
		cp(filepath.Join(dir, "up.bin"), remote("up.bin"))
		sum := sha256.Sum256(data)
		res := kubectlEnv(t, kubeconfig, tr.env, "", "exec", "-n", ns, pod, "--", "sha256sum", "up.bin")
		if fields := strings.Fields(res.Stdout); len(fields) == 0 || fields[0] != hex.EncodeToString(sum[:]) {
			t.Fatalf("in the container, up.bin has sha256 %q, want %x (%s)", res.Stdout, sum, res.Stderr)
		}
		cp(remote("up.bin"), filepath.Join(dir, "down.bin"))
		if got := readFile(t, filepath.Join(dir, "down.bin")); !bytes.Equal(got, data) {
			t.Fatalf("copied back %d bytes that differ from the %d sent", len(got), len(data))
		}

		tree := map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"}
		for name, content := range tree {
			writeFile(t, filepath.Join(dir, "tree", name), []byte(content))
		}
		cp(filepath.Join(dir, "tree"), remote("tree"))
		res = kubectlEnv(t, kubeconfig, tr.env, "", "exec", "-n", ns, pod, "--", "cat", "tree/a.txt", "tree/sub/b.txt")
		if res.Stdout != "alpha\nbeta\n" {
			t.Fatalf("in the container the tree holds %q (%s)", res.Stdout, res.Stderr)
		}
		cp(remote("tree"), filepath.Join(dir, "back"))
		for name, content := range tree {
			if got := string(readFile(t, filepath.Join(dir, "back", name))); got != content {
				t.Fatalf("copied back %s = %q, want %q", name, got, content)
			}
		}
		assertNodeTransport(t, node, ns, pod, tr, mode)
	})
}

// TestExecForbidden proves that an exec RBAC denies ends at the upstream's
// 403, passed on unchanged: kip answers 403 Forbidden, kubectl says what it
// says without kip, the node never hears of it, and kip holds nothing open
// for it afterwards.
func TestExecForbidden(t *testing.T) {
	ns := createNamespace(t)
	node := nodeFor(t, nodeModes[1])
	pod := harness.UniqueName("guarded")
	runPod(t, ns, node, podWith(pod))
	user := harness.UniqueName("onlooker")
	grant(t, ns, userSubject(user), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}})
	kubeconfig := userKubeconfig(t, user)
	direct := directKubeconfig(t, user)
	harness.Eventually(t, 30*time.Second, func() error {
		if res := kubectl(t, kubeconfig, "get", "pod", "-n", ns, pod); res.ExitCode != 0 {
			return errorf("get pod: %s", res.Stderr)
		}
		return nil
	})
	denied := fmt.Sprintf(`pods %q is forbidden: User %q cannot create resource "pods/exec"`, pod, user)

	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			before := proxyGoroutines()
			args := []string{"exec", "-n", ns, pod, "--", "echo", "must-not-run"}
			res := kubectlEnv(t, kubeconfig, tr.env, "", args...)
			if res.ExitCode == 0 || !strings.Contains(res.Stderr, denied) || strings.Contains(res.Stdout, "must-not-run") {
				t.Fatalf("want %s, got exit %d\nstdout: %s\nstderr: %s", denied, res.ExitCode, res.Stdout, res.Stderr)
			}
			if without := kubectlEnv(t, direct, tr.env, "", args...); without.Stderr != res.Stderr || without.ExitCode != res.ExitCode {
				t.Fatalf("through kip kubectl exits %d with %q; without kip, %d with %q", res.ExitCode, res.Stderr, without.ExitCode, without.Stderr)
			}
			if stats := node.Stats(ns, pod); stats.Exec != 0 || stats.Active != 0 {
				t.Fatalf("the node saw %+v for a denied exec", stats)
			}
			harness.Eventually(t, 30*time.Second, func() error {
				if now := proxyGoroutines(); now > before {
					return errorf("%d goroutines in kip's proxy, %d before the denied exec", now, before)
				}
				return nil
			})
		})
	}

	t.Run("status", func(t *testing.T) {
		status := spdyUpgradeStatus(t, user, "/api/v1/namespaces/"+ns+"/pods/"+pod+"/exec?command=true&stdout=true")
		if status.Code != http.StatusForbidden || status.Reason != metav1.StatusReasonForbidden || !strings.Contains(status.Message, denied) {
			t.Fatalf("kip answered %+v, want 403 Forbidden: %s", status, denied)
		}
	})

	throughKip := 0
	for _, ev := range auditEvents(t, "/pods/"+pod+"/exec") {
		if ev.ResponseStatus == nil || ev.ResponseStatus.Code != http.StatusForbidden {
			t.Fatalf("the upstream answered %s with %+v, want 403", ev.RequestURI, ev.ResponseStatus)
		}
		if ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username == user {
			throughKip++
		}
	}
	if throughKip == 0 {
		t.Fatalf("no denied exec reached the upstream as %s through kip", user)
	}
}

// directKubeconfig is a kubeconfig for user that reaches kube-apiserver
// without kip, to compare with.
func directKubeconfig(t *testing.T, user string) string {
	t.Helper()
	cfg, err := stack.Cluster.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), user+"-direct.kubeconfig")
	if err := localcluster.WriteKubeconfig(path, cfg.Host, cfg.CAData, cfg.CertData, cfg.KeyData); err != nil {
		t.Fatal(err)
	}
	return path
}

// spdyUpgradeStatus asks kip, as user, to upgrade path to SPDY as kubectl
// does, expects a refusal and returns the Status it carries.
func spdyUpgradeStatus(t *testing.T, user, path string) metav1.Status {
	t.Helper()
	cfg := stack.UserConfigFor(user)
	cfg.NextProtos = []string{"http/1.1"} // upgrades need HTTP/1.1
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, stack.KipURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var status metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		t.Fatalf("%s: decoding the body: %v", resp.Status, err)
	}
	if status.Code != int32(resp.StatusCode) {
		t.Fatalf("HTTP status %s, Status code %d", resp.Status, status.Code)
	}
	return status
}

// assertNodeTransport checks which way the session reached the node: as
// WebSocket only when kubectl used WebSocket and the node declared it
// speaks it, else as SPDY converted by kube-apiserver.
func assertNodeTransport(t *testing.T, node *testnode.Node, ns, pod string, tr transport, mode nodeMode) {
	t.Helper()
	stats := node.Stats(ns, pod)
	passedThrough := tr.env == nil && mode.websocket
	switch {
	case passedThrough && stats.WebSocket == 0:
		t.Fatalf("the node declared %s, yet kube-apiserver converted every WebSocket session to SPDY: %+v", testnode.WebSocketFeature, stats)
	case !passedThrough && stats.WebSocket != 0:
		t.Fatalf("the node saw %d WebSocket sessions, want SPDY only: %+v", stats.WebSocket, stats)
	}
}

// proxyGoroutines counts the goroutines serving a request in kip's proxy
// step, which runs in this process.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http/httputil.(*ReverseProxy)") || strings.Contains(g, "kip/internal/proxy.") {
			count++
		}
	}
	return count
}

func podListeningOn(name string, port int) *corev1.Pod {
	pod := podWith(name)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}}
	return pod
}

// The streaming helpers are the harness's, with this package's kubectl.
type kubectlProcess = harness.KubectlProcess

// startPortForward runs kubectl port-forward to port of pod and returns the
// local address it listens on.
func startPortForward(t *testing.T, kubeconfig string, env []string, ns, pod string, port int) string {
	t.Helper()
	local, _ := startPortForwardProcess(t, kubeconfig, env, ns, pod, port)
	return local
}

// startPortForwardProcess is startPortForward that also returns kubectl,
// for a test that ends the forward itself.
func startPortForwardProcess(t *testing.T, kubeconfig string, env []string, ns, pod string, port int) (string, *kubectlProcess) {
	t.Helper()
	return harness.StartPortForward(t, stack.Binaries.Kubectl, kubeconfig, env, ns, pod, port)
}

func startKubectl(t *testing.T, kubeconfig string, env []string, args ...string) *kubectlProcess {
	t.Helper()
	return harness.StartKubectl(t, stack.Binaries.Kubectl, kubeconfig, env, args...)
}

func startKubectlOnTerminal(t *testing.T, kubeconfig string, env []string, size pty.Winsize, args ...string) *kubectlProcess {
	t.Helper()
	return harness.StartKubectlOnTerminal(t, stack.Binaries.Kubectl, kubeconfig, env, size, args...)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
