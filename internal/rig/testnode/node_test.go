package testnode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// These tests talk to the node directly, as kube-apiserver would, with
// client-go's own streaming clients; test/integration proves the whole path
// through kube-apiserver and kip with kubectl.

const ns = "default"

func startNode(t *testing.T, websocket bool) (*Node, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Client: client, Name: "node-under-test", DeclareWebSocketFeature: websocket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n, client
}

func runPod(t *testing.T, n *Node, client *fake.Clientset, pod *corev1.Pod) {
	t.Helper()
	pod.Namespace, pod.Spec.NodeName = ns, n.Name()
	if _, err := client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		got, err := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != PodIP || len(got.Status.ContainerStatuses) != len(pod.Spec.Containers) {
			return fmt.Errorf("pod status %+v", got.Status)
		}
		return nil
	})
}

func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func clientConfig(n *Node) *rest.Config {
	return &rest.Config{Host: n.URL(), TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

func TestRegistersTheNode(t *testing.T) {
	for _, websocket := range []bool{false, true} {
		n, client := startNode(t, websocket)
		node, err := client.CoreV1().Nodes().Get(context.Background(), n.Name(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(n.URL())
		port, _ := strconv.Atoi(u.Port())
		if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; int(got) != port {
			t.Errorf("kubelet port %d, want %d", got, port)
		}
		if !slices.Contains(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}) {
			t.Errorf("addresses %v lack InternalIP 127.0.0.1", node.Status.Addresses)
		}
		if got := slices.Contains(node.Status.DeclaredFeatures, WebSocketFeature); got != websocket {
			t.Errorf("declared features %v, want %s declared: %t", node.Status.DeclaredFeatures, WebSocketFeature, websocket)
		}
		n.Stop()
		if _, err := client.CoreV1().Nodes().Get(context.Background(), n.Name(), metav1.GetOptions{}); err == nil {
			t.Error("the Node object outlived Stop")
		}
	}
}

func execURL(n *Node, pod string, stdin, tty bool, cmd ...string) *url.URL {
	q := url.Values{"command": cmd, "output": {"1"}}
	if stdin {
		q.Set("input", "1")
	}
	if tty {
		q.Set("tty", "1")
	} else {
		q.Set("error", "1")
	}
	u, _ := url.Parse(n.URL() + "/exec/" + ns + "/" + pod + "/main?" + q.Encode())
	return u
}

func TestExec(t *testing.T) {
	for _, tc := range []struct {
		name      string
		websocket bool
		executor  func(*rest.Config, *url.URL) (remotecommand.Executor, error)
	}{
		{"spdy", false, func(c *rest.Config, u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(c, "POST", u)
		}},
		{"websocket converted by the node", true, func(c *rest.Config, u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(c, "GET", u.String())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, client := startNode(t, tc.websocket)
			runPod(t, n, client, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "shell"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
			})
			run := func(stdin io.Reader, tty bool, size *remotecommand.TerminalSize, cmd ...string) (string, string, error) {
				exe, err := tc.executor(clientConfig(n), execURL(n, "shell", stdin != nil, tty, cmd...))
				if err != nil {
					t.Fatal(err)
				}
				var stdout, stderr bytes.Buffer
				opts := remotecommand.StreamOptions{Stdin: stdin, Stdout: &stdout, Tty: tty}
				if !tty {
					opts.Stderr = &stderr
				}
				if size != nil {
					opts.TerminalSizeQueue = &oneSize{size: size}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err = exe.StreamWithContext(ctx, opts)
				return stdout.String(), stderr.String(), err
			}

			stdout, stderr, err := run(nil, false, nil, "sh", "-c", "pwd; echo oops >&2; exit 7")
			var exitErr exec.CodeExitError
			if !errors.As(err, &exitErr) || exitErr.Code != 7 {
				t.Fatalf("want exit code 7, got %v", err)
			}
			if wd, _ := os.Getwd(); strings.TrimSpace(stdout) == wd || !strings.Contains(stdout, "shell") || stderr != "oops\n" {
				t.Fatalf("stdout %q (want the pod's directory), stderr %q", stdout, stderr)
			}

			stdout, _, err = run(strings.NewReader("one\ntwo\n"), false, nil, "wc", "-l")
			if err != nil || strings.TrimSpace(stdout) != "2" {
				t.Fatalf("wc -l of two lines: %q, %v", stdout, err)
			}

			stdout, _, err = run(strings.NewReader(""), true, &remotecommand.TerminalSize{Width: 99, Height: 33}, "stty", "size")
			if err != nil || !strings.Contains(stdout, "33 99") {
				t.Fatalf("stty size on a 99x33 terminal: %q, %v", stdout, err)
			}

			waitFor(t, func() error {
				// The node finishes a session just after the client has seen its end.
				if stats := n.Stats(ns, "shell"); stats.Exec != 3 || stats.Active != 0 || (stats.WebSocket != 0) != tc.websocket {
					return fmt.Errorf("stats %+v", stats)
				}
				return nil
			})
		})
	}
}

// oneSize reports one terminal size; nil then ends the resizing.
type oneSize struct{ size *remotecommand.TerminalSize }

func (q *oneSize) Next() *remotecommand.TerminalSize {
	s := q.size
	q.size = nil
	return s
}

func TestAttachAndLogs(t *testing.T) {
	n, client := startNode(t, false)
	runPod(t, n, client, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Stdin: true,
			Command: []string{"sh", "-c", `while read n; do echo "line $n"; done`},
		}}},
	})

	logs := followLogs(t, n, "echo")
	u, _ := url.Parse(n.URL() + "/attach/" + ns + "/echo/main?input=1&output=1&error=1")
	exe, err := remotecommand.NewSPDYExecutor(clientConfig(n), "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- exe.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdin: stdinR, Stdout: stdoutW, Stderr: io.Discard})
		_ = stdoutW.Close()
	}()
	attached := bufio.NewReader(stdoutR)
	for i := 1; i <= 3; i++ {
		if _, err := fmt.Fprintf(stdinW, "%d\n", i); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("line %d\n", i)
		for _, r := range []*bufio.Reader{attached, logs} {
			if got, err := r.ReadString('\n'); got != want {
				t.Fatalf("read %q (%v), want %q", got, err, want)
			}
		}
	}
	_ = stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("attach ended with %v", err)
	}
	if stats := n.Stats(ns, "echo"); stats.Attach != 1 || stats.Logs != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

// TestAttachTerminal proves attach -t joins the terminal of a container
// with tty: true: what the client types reaches the process through the
// terminal (which echoes it), the terminal takes the client's size, and
// the session ends when the process exits. Attaching without -t to it is
// refused.
func TestAttachTerminal(t *testing.T) {
	n, client := startNode(t, false)
	runPod(t, n, client, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "term"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Stdin: true, TTY: true,
			Command: []string{"sh", "-c", `while read l; do stty size; [ "$l" = quit ] && exit 3; done`},
		}}},
	})
	attach := func(tty bool) (remotecommand.Executor, error) {
		q := "input=1&output=1&error=1"
		if tty {
			q = "input=1&output=1&tty=1"
		}
		u, _ := url.Parse(n.URL() + "/attach/" + ns + "/term/main?" + q)
		return remotecommand.NewSPDYExecutor(clientConfig(n), "POST", u)
	}
	exe, err := attach(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := exe.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}); err == nil {
		t.Fatal("attach without a terminal to a container with one succeeded")
	}
	if exe, err = attach(true); err != nil {
		t.Fatal(err)
	}
	// The session ends when the process exits: stdin stays open till then.
	stdinR, stdinW := io.Pipe()
	defer func() { _ = stdinW.Close() }()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- exe.StreamWithContext(context.Background(), remotecommand.StreamOptions{
			Stdin: stdinR, Stdout: stdoutW, Tty: true,
			TerminalSizeQueue: &oneSize{size: &remotecommand.TerminalSize{Width: 99, Height: 33}},
		})
		_ = stdoutW.Close()
	}()
	// The size reaches the terminal beside what is typed, not before it:
	// ask until it shows.
	shown := bufio.NewReader(stdoutR)
	for i := 0; ; i++ {
		if _, err := io.WriteString(stdinW, "size\r"); err != nil {
			t.Fatal(err)
		}
		if echo, err := shown.ReadString('\n'); echo != "size\r\n" {
			t.Fatalf("the terminal echoed %q (%v), want what was typed", echo, err)
		}
		size, err := shown.ReadString('\n')
		if size == "33 99\r\n" {
			break
		}
		if err != nil || i == 50 {
			t.Fatalf("the terminal has size %q (%v), want 33 99", size, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := io.WriteString(stdinW, "quit\r"); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, shown) }()
	if err := <-done; err != nil {
		t.Fatalf("attach ended with %v", err)
	}
}

// TestStopEndsSessions proves Stop leaves no stream open: a port-forward
// connection, which outlives any process, ends with the node.
func TestStopEndsSessions(t *testing.T) {
	n, client := startNode(t, false)
	runPod(t, n, client, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "idle"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	})
	u, _ := url.Parse(n.URL() + "/portForward/" + ns + "/idle")
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesForStreamingWithContext(context.Background(), spdyDialer(t, clientConfig(n), u),
		[]string{"127.0.0.1"}, []string{"0:1"}, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	<-ready
	waitFor(t, func() error {
		if n.Stats(ns, "idle").Active != 1 {
			return errors.New("the port-forward has not reached the node yet")
		}
		return nil
	})
	n.Stop()
	select {
	case err := <-done:
		t.Logf("the port-forward ended with %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a port-forward connection outlived Stop")
	}
}

func followLogs(t *testing.T, n *Node, pod string) *bufio.Reader {
	t.Helper()
	client, err := rest.HTTPClientFor(clientConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/containerLogs/"+ns+"/"+pod+"/main?follow=true", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logs: %s", resp.Status)
	}
	return bufio.NewReader(resp.Body)
}

func TestPortForward(t *testing.T) {
	ln, err := ServePort(func(conn net.Conn) { _, _ = io.Copy(conn, conn) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	port := ln.Addr().(*net.TCPAddr).Port

	for _, websocket := range []bool{false, true} {
		t.Run(fmt.Sprintf("websocket=%t", websocket), func(t *testing.T) {
			n, client := startNode(t, websocket)
			runPod(t, n, client, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "server"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
			})
			u, _ := url.Parse(n.URL() + "/portForward/" + ns + "/server")
			cfg := clientConfig(n)
			pfDialer := spdyDialer(t, cfg, u)
			if websocket {
				if pfDialer, err = portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg); err != nil {
					t.Fatal(err)
				}
			}
			ready := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pf, err := portforward.NewOnAddressesForStreamingWithContext(ctx, pfDialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, ready, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = pf.ForwardPorts() }()
			<-ready
			ports, err := pf.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(ports[0].Local)))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
			go func() { _, _ = conn.Write(payload) }()
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("echo through the node: %v", err)
			}
			if stats := n.Stats(ns, "server"); stats.PortForward != 1 || (stats.WebSocket != 0) != websocket {
				t.Fatalf("stats %+v", stats)
			}
		})
	}
}

func spdyDialer(t *testing.T, cfg *rest.Config, u *url.URL) httpstream.Dialer {
	t.Helper()
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: rt}, "POST", u)
}

func TestTailOffset(t *testing.T) {
	for _, tc := range []struct {
		log  string
		n    int64
		want string
	}{
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 9, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"", 5, ""},
	} {
		f, err := os.CreateTemp(t.TempDir(), "log")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.WriteString(tc.log)
		_, _ = f.Seek(0, io.SeekStart)
		if got := tc.log[tailOffset(f, tc.n):]; got != tc.want {
			t.Errorf("last %d lines of %q: %q, want %q", tc.n, tc.log, got, tc.want)
		}
		_ = f.Close()
	}
}
