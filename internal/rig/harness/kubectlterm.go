//go:build unix

package harness

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// StartKubectlOnTerminal runs the kubectl at bin on a new terminal of
// size, as a user's shell would (kubectl exec -it). Its output, stderr
// included, is in Stdout; what is written to Stdin is typed on the
// terminal.
func StartKubectlOnTerminal(t testing.TB, bin, kubeconfig string, env []string, size pty.Winsize, args ...string) *KubectlProcess {
	t.Helper()
	k := newKubectlProcess(bin, kubeconfig, env, args)
	term, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(term, &size); err != nil {
		t.Fatal(err)
	}
	k.Cmd.Stdin, k.Cmd.Stdout, k.Cmd.Stderr = tty, tty, tty
	k.Cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = k.Cmd.Start()
	_ = tty.Close()
	if err != nil {
		_ = term.Close()
		t.Fatal(err)
	}
	k.Stdin, k.Term = term, term
	copied := make(chan struct{})
	go func() {
		// Ends with EIO once kubectl has exited.
		_, _ = io.Copy(k.Stdout, term)
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
