package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// KubectlProcess is a real kubectl the test talks to while it runs: exec,
// attach, logs -f, port-forward.
type KubectlProcess struct {
	Cmd            *exec.Cmd
	Stdin          io.Writer
	Stdout, Stderr *SyncBuffer
	// Term is the terminal's controlling side when kubectl runs on one
	// (StartKubectlOnTerminal); its output is then in Stdout.
	Term     *os.File
	done     chan struct{}
	exitCode int
}

// StartKubectl runs the kubectl at bin with kubeconfig, env added to this
// process's environment, and pipes for stdin, stdout and stderr. It is
// killed when the test ends.
func StartKubectl(t testing.TB, bin, kubeconfig string, env []string, args ...string) *KubectlProcess {
	t.Helper()
	k := newKubectlProcess(bin, kubeconfig, env, args)
	stdin, err := k.Cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	k.Stdin = stdin
	k.Cmd.Stdout, k.Cmd.Stderr = k.Stdout, k.Stderr
	if err := k.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.watch(t, func() {})
	return k
}

func newKubectlProcess(bin, kubeconfig string, env []string, args []string) *KubectlProcess {
	cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return &KubectlProcess{Cmd: cmd, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, done: make(chan struct{})}
}

// watch records the exit, after whenExited, and kills kubectl at the end
// of the test if it still runs.
func (k *KubectlProcess) watch(t testing.TB, whenExited func()) {
	go func() {
		err := k.Cmd.Wait()
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
		if !k.Exited() {
			_ = k.Cmd.Process.Kill()
		}
		<-k.done
	})
}

// Exited says whether kubectl has exited.
func (k *KubectlProcess) Exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// Wait waits for kubectl to exit and returns its exit code.
func (k *KubectlProcess) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-k.done:
		return k.exitCode
	case <-time.After(2 * time.Minute):
		t.Fatalf("kubectl %v still runs; output:\n%s%s", k.Cmd.Args[3:], k.Stdout, k.Stderr)
		return 0
	}
}

// WaitForOutput waits until kubectl's stdout holds want.
func (k *KubectlProcess) WaitForOutput(t testing.TB, want string) {
	t.Helper()
	k.waitFor(t, k.Stdout, "output", want)
}

// WaitForError waits until kubectl's stderr holds want.
func (k *KubectlProcess) WaitForError(t testing.TB, want string) {
	t.Helper()
	k.waitFor(t, k.Stderr, "error output", want)
}

func (k *KubectlProcess) waitFor(t testing.TB, buf *SyncBuffer, what, want string) {
	t.Helper()
	Eventually(t, time.Minute, func() error {
		if strings.Contains(buf.String(), want) {
			return nil
		}
		if k.Exited() && !strings.Contains(buf.String(), want) {
			t.Fatalf("kubectl %v exited %d before its %s showed %q\nstdout: %s\nstderr: %s", k.Cmd.Args[3:], k.exitCode, what, want, k.Stdout, k.Stderr)
		}
		return fmt.Errorf("kubectl %v: no %q in its %s yet", k.Cmd.Args[3:], want, what)
	})
}

var forwardingFrom = regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> (\d+)`)

// StartPortForward runs the kubectl at bin as kubectl port-forward to port
// of pod, and returns the local address it listens on and the process.
func StartPortForward(t testing.TB, bin, kubeconfig string, env []string, ns, pod string, port int) (string, *KubectlProcess) {
	t.Helper()
	k := StartKubectl(t, bin, kubeconfig, env, "port-forward", "-n", ns, "pod/"+pod, "--address", "127.0.0.1", ":"+strconv.Itoa(port))
	var local string
	Eventually(t, time.Minute, func() error {
		if m := forwardingFrom.FindStringSubmatch(k.Stdout.String()); m != nil && m[2] == strconv.Itoa(port) {
			local = m[1]
			return nil
		}
		if k.Exited() {
			return errors.New("kubectl port-forward exited: " + k.Stderr.String())
		}
		return errors.New("kubectl port-forward is not listening yet")
	})
	return local, k
}
