package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
			data := randomBytes(8<<20, 1)
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
			k.waitForOutput(t, "ready")
			if _, err := io.WriteString(k.stdin, "hello\r"); err != nil {
				t.Fatal(err)
			}
			if code := k.wait(t); code != 3 {
				t.Fatalf("kubectl exited %d, want 3; output:\n%s", code, k.stdout)
			}
			for _, want := range []string{"41 123", "got hello"} {
				if !strings.Contains(k.stdout.String(), want) {
					t.Fatalf("the terminal shows no %q:\n%s", want, k.stdout)
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
			if _, err := fmt.Fprintf(attach.stdin, "%d\n", n); err != nil {
				t.Fatal(err)
			}
			line := fmt.Sprintf("line %d\n", n)
			attach.waitForOutput(t, line)
			attach.waitForError(t, fmt.Sprintf("err %d\n", n))
			logs.waitForOutput(t, line)
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
		echo := startEchoServer(t)
		pod := harness.UniqueName("forward")
		runPod(t, ns, node, podListeningOn(pod, echo.port))
		local := startPortForward(t, kubeconfig, tr.env, ns, pod, echo.port)

		t.Run("100MB each way", func(t *testing.T) {
			start := time.Now()
			sent := echoOnNewConn(t, local, 100<<20, 2)
			if got := echo.nextReceived(t); got != sent {
				t.Fatalf("the server received sha256 %x, kubectl was sent %x", got, sent)
			}
			t.Logf("100 MB each way in %s", time.Since(start).Round(time.Millisecond))
		})

		t.Run("two connections at once", func(t *testing.T) {
			var wg sync.WaitGroup
			sums := make([][32]byte, 2)
			for i := range sums {
				wg.Go(func() { sums[i] = echoOnNewConn(t, local, 8<<20, uint64(10+i)) })
			}
			wg.Wait()
			got := [][32]byte{echo.nextReceived(t), echo.nextReceived(t)}
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
		echo := startEchoServer(t)
		pod := harness.UniqueName("idle")
		runPod(t, ns, node, podListeningOn(pod, echo.port))
		local := startPortForward(t, kubeconfig, tr.env, ns, pod, echo.port)

		conn, err := net.Dial("tcp", local)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		echoOnConn(t, conn, 1<<20, 20)
		time.Sleep(70 * time.Second)
		echoOnConn(t, conn, 1<<20, 21)
		echoOnNewConn(t, local, 1<<20, 22)
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
		data := randomBytes(3<<20, 3)
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

var forwardingFrom = regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> (\d+)`)

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
	k := startKubectl(t, kubeconfig, env, "port-forward", "-n", ns, "pod/"+pod, "--address", "127.0.0.1", ":"+strconv.Itoa(port))
	var local string
	harness.Eventually(t, time.Minute, func() error {
		if m := forwardingFrom.FindStringSubmatch(k.stdout.String()); m != nil && m[2] == strconv.Itoa(port) {
			local = m[1]
			return nil
		}
		if k.exited() {
			return errors.New("kubectl port-forward exited: " + k.stderr.String())
		}
		return errors.New("kubectl port-forward is not listening yet")
	})
	return local, k
}

// echoServer answers every connection with what it receives and reports
// the sha256 of what each connection carried once the client closes it.
type echoServer struct {
	port     int
	received chan [32]byte
}

func startEchoServer(t *testing.T) *echoServer {
	t.Helper()
	s := &echoServer{received: make(chan [32]byte, 16)}
	ln, err := testnode.ServePort(func(conn net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(conn, io.TeeReader(conn, h)); err != nil {
			return
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		select {
		case s.received <- sum:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s.port = ln.Addr().(*net.TCPAddr).Port
	return s
}

// nextReceived waits for the sha256 of a connection the server finished.
func (s *echoServer) nextReceived(t *testing.T) [32]byte {
	t.Helper()
	select {
	case sum := <-s.received:
		return sum
	case <-time.After(time.Minute):
		t.Fatal("the echo server saw no connection end")
		return [32]byte{}
	}
}

// echoOnNewConn sends size random bytes through a new connection to addr,
// checks that the same bytes come back, closes the connection and returns
// the sha256 of what was sent.
func echoOnNewConn(t *testing.T, addr string, size int64, seed uint64) [32]byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return [32]byte{}
	}
	defer func() { _ = conn.Close() }()
	return echoOnConn(t, conn, size, seed)
}

// echoOnConn sends size random bytes on conn while reading them back, and
// fails unless what came back is what was sent. It may run in a goroutine
// other than the test's.
func echoOnConn(t *testing.T, conn net.Conn, size int64, seed uint64) [32]byte {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	sent, back := sha256.New(), sha256.New()
	written := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(conn, sent), io.LimitReader(randomReader(seed), size))
		written <- err
	}()
	n, err := io.CopyN(back, conn, size)
	if werr := <-written; werr != nil {
		t.Errorf("sending: %v", werr)
		return [32]byte{}
	}
	if err != nil {
		t.Errorf("got %d of %d bytes back: %v", n, size, err)
		return [32]byte{}
	}
	var sum [32]byte
	copy(sum[:], sent.Sum(nil))
	if !bytes.Equal(back.Sum(nil), sum[:]) {
		t.Errorf("%d bytes came back different from what was sent", size)
	}
	return sum
}

func randomReader(seed uint64) io.Reader {
	var key [32]byte
	copy(key[:], strconv.FormatUint(seed, 10))
	return rand.NewChaCha8(key)
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(randomReader(seed), b)
	return b
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

// kubectlProcess is a kubectl the test talks to while it runs.
type kubectlProcess struct {
	cmd            *exec.Cmd
	stdin          io.Writer
	stdout, stderr *harness.SyncBuffer
	// term is the terminal's controlling side when kubectl runs on one.
	term     *os.File
	done     chan struct{}
	exitCode int
}

// startKubectl runs kubectl with pipes for stdin, stdout and stderr. It is
// killed when the test ends.
func startKubectl(t *testing.T, kubeconfig string, env []string, args ...string) *kubectlProcess {
	t.Helper()
	k := newKubectlProcess(kubeconfig, env, args)
	stdin, err := k.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	k.stdin = stdin
	k.cmd.Stdout, k.cmd.Stderr = k.stdout, k.stderr
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.watch(t, func() {})
	return k
}

// startKubectlOnTerminal runs kubectl on a new terminal of size. Its
// output, stderr included, is in stdout.
func startKubectlOnTerminal(t *testing.T, kubeconfig string, env []string, size pty.Winsize, args ...string) *kubectlProcess {
	t.Helper()
	k := newKubectlProcess(kubeconfig, env, args)
	term, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(term, &size); err != nil {
		t.Fatal(err)
	}
	k.cmd.Stdin, k.cmd.Stdout, k.cmd.Stderr = tty, tty, tty
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = k.cmd.Start()
	_ = tty.Close()
	if err != nil {
		_ = term.Close()
		t.Fatal(err)
	}
	k.stdin, k.term = term, term
	copied := make(chan struct{})
	go func() {
		// Ends with EIO once kubectl has exited.
		_, _ = io.Copy(k.stdout, term)
		close(copied)
	}()
	k.watch(t, func() {
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
		}
		_ = term.Close()
	})
	return k
}

func newKubectlProcess(kubeconfig string, env []string, args []string) *kubectlProcess {
	cmd := exec.Command(stack.Binaries.Kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return &kubectlProcess{cmd: cmd, stdout: &harness.SyncBuffer{}, stderr: &harness.SyncBuffer{}, done: make(chan struct{})}
}

// watch records the exit, after whenExited, and kills kubectl at the end
// of the test if it still runs.
func (k *kubectlProcess) watch(t *testing.T, whenExited func()) {
	go func() {
		err := k.cmd.Wait()
		whenExited()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			k.exitCode = exitErr.ExitCode()
		} else if err != nil {
			k.exitCode = -1
		}
		close(k.done)
	}()
	t.Cleanup(func() {
		if !k.exited() {
			_ = k.cmd.Process.Kill()
		}
		<-k.done
	})
}

func (k *kubectlProcess) exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// wait waits for kubectl to exit and returns its exit code.
func (k *kubectlProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-k.done:
		return k.exitCode
	case <-time.After(2 * time.Minute):
		t.Fatalf("kubectl %v still runs; output:\n%s%s", k.cmd.Args[3:], k.stdout, k.stderr)
		return 0
	}
}

func (k *kubectlProcess) waitForOutput(t *testing.T, want string) {
	t.Helper()
	k.waitFor(t, k.stdout, "output", want)
}

func (k *kubectlProcess) waitForError(t *testing.T, want string) {
	t.Helper()
	k.waitFor(t, k.stderr, "error output", want)
}

func (k *kubectlProcess) waitFor(t *testing.T, buf *harness.SyncBuffer, what, want string) {
	t.Helper()
	harness.Eventually(t, time.Minute, func() error {
		if strings.Contains(buf.String(), want) {
			return nil
		}
		if k.exited() && !strings.Contains(buf.String(), want) {
			t.Fatalf("kubectl %v exited %d before its %s showed %q\nstdout: %s\nstderr: %s", k.cmd.Args[3:], k.exitCode, what, want, k.stdout, k.stderr)
		}
		return fmt.Errorf("kubectl %v: no %q in its %s yet", k.cmd.Args[3:], want, what)
	})
}
