package testnode

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
)

const (
	// outputDrainTimeout bounds how long a finished process's output may
	// take to reach a client: a background child that keeps the output
	// open must not hold a session forever.
	outputDrainTimeout = 10 * time.Second
	// stopTimeout bounds the wait for a killed container to be gone.
	stopTimeout = 5 * time.Second
)

// container is a Pod's container: a local process started when the Pod is
// bound, whose output goes to a log file and to every attached client.
// A container without command or args has no process; it only idles.
type container struct {
	id   string // namespace/pod/name, also its CRI container ID
	pod  *pod
	env  []string
	logs *logFile
	// stdout and stderr fan the process's output out to attached clients.
	stdout, stderr *broadcaster
	// stdin is the process's standard input, nil unless spec.stdin is set.
	stdin io.WriteCloser
	// term is the process's terminal when spec.tty is set (its output,
	// stderr included, goes to stdout); nil otherwise. termMu keeps a
	// resize off a terminal being closed.
	term       *os.File
	termMu     sync.Mutex
	termClosed bool
	started    time.Time
	// done is closed once the process has exited and its output is in the
	// log, or, for a container without a process, when it is stopped.
	done     chan struct{}
	stopOnce sync.Once
	hasProc  bool
}

func startContainer(p *pod, spec corev1.Container) (*container, error) {
	logs, err := newLogFile(filepath.Join(p.logDir, spec.Name+".log"))
	if err != nil {
		return nil, err
	}
	c := &container{
		id:      p.namespace + "/" + p.name + "/" + spec.Name,
		pod:     p,
		env:     containerEnv(p, spec.Env),
		logs:    logs,
		stdout:  &broadcaster{logs: logs},
		stderr:  &broadcaster{logs: logs},
		started: time.Now(),
		done:    make(chan struct{}),
	}
	argv := append(append([]string(nil), spec.Command...), spec.Args...)
	if len(argv) == 0 {
		return c, nil
	}
	c.hasProc = true
	cmd := c.command(argv)
	if spec.TTY {
		if err := c.startOnTerminal(cmd, spec.Stdin); err != nil {
			return nil, err
		}
		return c, nil
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if spec.Stdin {
		if c.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	err = cmd.Start()
	// The child holds its own copies; ours would keep the pipes open.
	_ = outW.Close()
	_ = errW.Close()
	if err != nil {
		_ = outR.Close()
		_ = errR.Close()
		return nil, err
	}
	go func() {
		var pumps sync.WaitGroup
		pumps.Add(2)
		go func() { defer pumps.Done(); c.stdout.pump(outR) }()
		go func() { defer pumps.Done(); c.stderr.pump(errR) }()
		pumps.Wait()
		_ = cmd.Wait()
		_ = logs.close()
		close(c.done)
	}()
	return c, nil
}

// startOnTerminal starts cmd on a new pseudo-terminal, as a runtime does
// for a container with tty: true, so that kubectl attach -t has a terminal
// to join.
func (c *container) startOnTerminal(cmd *exec.Cmd, stdin bool) error {
	// pty.Start makes the process a session leader (Setsid), so it leads
	// its own process group as killGroup expects.
	term, err := pty.Start(cmd)
	if err != nil {
		return err
	}
	c.term = term
	if stdin {
		c.stdin = term
	}
	go func() {
		// Ends with EIO once the process and its children closed the
		// terminal.
		c.stdout.pump(io.NopCloser(term))
		c.termMu.Lock()
		c.termClosed = true
		_ = term.Close()
		c.termMu.Unlock()
		_ = cmd.Wait()
		_ = c.logs.close()
		close(c.done)
	}()
	return nil
}

// resize sizes the container's terminal, while it has one.
func (c *container) resize(size *pty.Winsize) {
	c.termMu.Lock()
	defer c.termMu.Unlock()
	if !c.termClosed {
		_ = pty.Setsize(c.term, size)
	}
}

// command prepares argv to run as part of the container: in the Pod's
// directory, with the container's environment, killed with its whole
// process group when the Pod stops.
func (c *container) command(argv []string) *exec.Cmd {
	cmd := exec.CommandContext(c.pod.ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = c.pod.dir, c.env
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = outputDrainTimeout
	return cmd
}

func killGroup(p *os.Process) error {
	if p == nil {
		return nil
	}
	// The process leads its own group (Setpgid or Setsid), so its
	// children die with it.
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return p.Kill()
	}
	return nil
}

// containerEnv is a small, predictable environment: the host's PATH, so
// that sh, tar and friends are found, and the literal values of the spec.
func containerEnv(p *pod, vars []corev1.EnvVar) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=" + p.dir, "HOSTNAME=" + p.name}
	for _, v := range vars {
		if v.ValueFrom == nil {
			env = append(env, v.Name+"="+v.Value)
		}
	}
	return env
}

// stop waits, within reason, for the container to be gone. The Pod's
// context has been cancelled already, which kills the process.
func (c *container) stop() {
	if !c.hasProc {
		c.stopOnce.Do(func() {
			_ = c.logs.close()
			close(c.done)
		})
		return
	}
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
	}
}

// broadcaster copies one output stream of a process to the log and to
// every subscribed client. A slow client slows the process down, as a full
// pipe would.
type broadcaster struct {
	logs *logFile
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	w io.Writer
	// failed is closed when a write to w fails; the subscriber is then
	// dropped.
	failed chan struct{}
}

func (b *broadcaster) pump(r io.ReadCloser) {
	defer func() { _ = r.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			b.send(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (b *broadcaster) send(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logs.write(p)
	for s := range b.subs {
		if _, err := s.w.Write(p); err != nil {
			delete(b.subs, s)
			close(s.failed)
		}
	}
}

// subscribe sends everything written from now on to w until the returned
// function is called or a write fails.
func (b *broadcaster) subscribe(w io.Writer) (failed <-chan struct{}, unsubscribe func()) {
	s := &subscriber{w: w, failed: make(chan struct{})}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*subscriber]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s.failed, func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}
}

// logFile is a container's log: appended to by the process's output and
// read, and followed, by log requests.
type logFile struct {
	path string

	mu      sync.Mutex
	f       *os.File
	changed chan struct{} // closed and replaced on every write
}

func newLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f, changed: make(chan struct{})}, nil
}

func (l *logFile) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = l.f.Write(p)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// watch returns a channel that is closed at the next write. Take it before
// reading to the end of the file, so that no write goes unnoticed.
func (l *logFile) watch() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
