package identity

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevCleansUpUnderAPipe runs `kip dev | tee log` as a user does and
// ends it as Ctrl-C does: tee is gone first (the pipe's reader closes),
// then kip dev gets SIGINT, and must still stop its control plane and
// identity provider and remove every folder it made. The SIGPIPE case is a
// write to that broken pipe: kip dev must clean up instead of dying.
func TestDevCleansUpUnderAPipe(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGPIPE} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(env.kip, "dev", "--skip-browser")
			// Every folder kip dev makes is under TMPDIR.
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			ready := make(chan bool, 1)
			go func() {
				s := bufio.NewScanner(stdout)
				for s.Scan() {
					if strings.Contains(s.Text(), "Ctrl-C stops everything") {
						ready <- true
						return
					}
				}
				ready <- false
			}()
			select {
			case ok := <-ready:
				if !ok {
					t.Fatalf("kip dev ended its output before it was ready:\n%s", stderr.String())
				}
			case <-time.After(5 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("kip dev was not ready after 5 minutes:\n%s", stderr.String())
			}
			if entries, _ := os.ReadDir(tmp); len(entries) == 0 {
				t.Fatal("kip dev made no folder under TMPDIR: the test would prove nothing")
			}

			// tee is gone: nobody reads kip dev's output any more.
			_ = stdout.(interface{ Close() error }).Close()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("kip dev ended with %v after %v:\n%s", err, sig, stderr.String())
				}
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("kip dev did not stop within 2 minutes of %v:\n%s", sig, stderr.String())
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
				var left []string
				for _, e := range entries {
					left = append(left, e.Name())
				}
				t.Fatalf("kip dev left %q in TMPDIR after %v:\n%s", left, sig, stderr.String())
			}
		})
	}
}
