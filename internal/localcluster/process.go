package localcluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has exited and been reaped
	err     error         // Wait's result; read only after exited is closed
}

// startProcess runs bin with args, appending its stdout and stderr to
// logPath.
//
// It uses exec.Command rather than CommandContext on purpose: the processes
// must outlive the context that bounded their start-up, and end only through
// stop.
func startProcess(name, bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor.
	defer func() { _ = logFile.Close() }()
	_, _ = fmt.Fprintf(logFile, "--- %s starting at %s: %s %q\n", name, time.Now().Format(time.RFC3339), bin, args)

	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own lets stop signal everything the process started.
		Setpgid: true,
		// If the test binary dies without calling Stop, take the child with
		// it rather than leave a control plane running.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL if the process has
// not exited within grace. It returns once the process has been reaped.
func (p *process) stop(grace time.Duration) error {
	if p.hasExited() {
		return nil
	}
	pgid := p.cmd.Process.Pid // the leader of its own group, see startProcess
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, pgid)
	}
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the process's log, for error messages:
// why a component failed to start is nearly always in its last words.
func (p *process) logTail() string {
	const maxBytes, maxLines = 8 << 10, 30
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		_, _ = f.Seek(-maxBytes, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", p.logPath, bytes.Join(lines, []byte("\n")))
}
