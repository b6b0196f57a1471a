package gateway

// The streaming helpers below are test/integration's: kubectl as a
// process the test talks to, port-forward, and an echo server that proves
// every byte came back.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

var forwardingFrom = regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> (\d+)`)

// startPortForward runs kubectl port-forward to port of pod and returns the
// local address it listens on.
func startPortForward(t *testing.T, kubeconfig string, env []string, ns, pod string, port int) string {
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
	return local
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
	done           chan struct{}
	exitCode       int
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

func newKubectlProcess(kubeconfig string, env []string, args []string) *kubectlProcess {
	cmd := exec.Command(gw.bins.Kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
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
