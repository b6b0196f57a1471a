package testnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// streamer is the CRI streaming server: it hands out single-use URLs for
// exec, attach and port-forward and serves them, as a container runtime
// does for the kubelet.
type streamer = streaming.Server

func newStreamer(addr string, rt streaming.Runtime) (streamer, error) {
	cfg := streaming.DefaultConfig
	cfg.Addr = addr
	cfg.BaseURL = &url.URL{Scheme: "http", Host: addr}
	return streaming.NewServer(cfg, rt)
}

// firstSizeWait bounds the wait for a client's terminal size before a
// command starts on a terminal.
const firstSizeWait = time.Second

// runtime runs exec, attach and port-forward for the CRI streaming server.
// Container IDs are namespace/pod/container, sandbox IDs namespace/pod.
type runtime struct {
	node *Node
}

var _ streaming.Runtime = (*runtime)(nil)

func (r *runtime) container(id string) (*container, error) {
	parts := strings.Split(id, "/")
	if len(parts) == 3 {
		if c, ok := r.node.pods.container(parts[0], parts[1], parts[2]); ok {
			return c, nil
		}
	}
	return nil, fmt.Errorf("container %s is not running on node %s", id, r.node.name)
}

// Exec runs cmd beside the container's process: same directory, same
// environment, killed when the Pod stops.
func (r *runtime) Exec(_ context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.container(id)
	if err != nil {
		return err
	}
	if len(cmd) == 0 {
		return errors.New("no command to run")
	}
	p := c.command(cmd)
	if tty {
		err = runTerminal(p, in, out, resize)
	} else {
		err = runPiped(p, in, out, errOut)
	}
	return exitError(p, err)
}

// runPiped runs p with its own pipes. stdin is copied without holding the
// session open: when the process exits, the session ends, read or not.
func runPiped(p *exec.Cmd, in io.Reader, out, errOut io.WriteCloser) error {
	p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out != nil {
		p.Stdout = out
	}
	if errOut != nil {
		p.Stderr = errOut
	}
	var stdin io.WriteCloser
	if in != nil {
		var err error
		if stdin, err = p.StdinPipe(); err != nil {
			return err
		}
	}
	if err := p.Start(); err != nil {
		return err
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	return p.Wait()
}

// runTerminal runs p on a new pseudo-terminal, resized as the client's
// terminal is.
func runTerminal(p *exec.Cmd, in io.Reader, out io.WriteCloser, resize <-chan remotecommandserver.TerminalSize) error {
	// Clients send their terminal's size as the session starts; starting
	// with it spares the command a resize right after it began, which it
	// might miss.
	var size *pty.Winsize
	select {
	case s, ok := <-resize:
		if ok {
			size = &pty.Winsize{Rows: s.Height, Cols: s.Width}
		}
	case <-time.After(firstSizeWait):
	}
	term, err := pty.StartWithSize(p, size)
	if err != nil {
		return err
	}
	finished := make(chan struct{})
	var resizing sync.WaitGroup
	resizing.Go(func() { resizeTerminal(func(s *pty.Winsize) { _ = pty.Setsize(term, s) }, resize, finished) })
	defer func() {
		// No resize may use the terminal as it closes.
		close(finished)
		resizing.Wait()
		_ = term.Close()
	}()
	if in != nil {
		go func() { _, _ = io.Copy(term, in) }()
	}
	dst := io.Discard
	if out != nil {
		dst = out
	}
	copied := make(chan struct{})
	go func() {
		// Ends with EIO once the process and its children closed the
		// terminal and everything they wrote was read.
		_, _ = io.Copy(dst, term)
		close(copied)
	}()
	err = p.Wait()
	select {
	case <-copied:
	case <-time.After(outputDrainTimeout):
	}
	return err
}

// resizeTerminal calls setSize as each message on resize says, until
// resize closes or finished does.
func resizeTerminal(setSize func(*pty.Winsize), resize <-chan remotecommandserver.TerminalSize, finished <-chan struct{}) {
	for {
		select {
		case s, ok := <-resize:
			if !ok {
				return
			}
			setSize(&pty.Winsize{Rows: s.Height, Cols: s.Width})
		case <-finished:
			return
		}
	}
}

// exitError makes a non-zero exit status something the streaming server
// reports as an exit code, not as a failure of the node.
func exitError(p *exec.Cmd, err error) error {
	if p.ProcessState != nil && p.ProcessState.Success() {
		// Also when Wait gave up on output held open by a child.
		return nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.ExitErrorWrapper{ExitError: exitErr}
	}
	return err
}

// Attach joins the container's process: its output from now on goes to
// out and errOut, and in goes to its stdin. The session ends when the
// client's stdin ends, a write to the client fails, or the process exits.
// A session with tty joins the terminal of a container that has one
// (spec.tty), and resizes it as the client's terminal is resized.
func (r *runtime) Attach(_ context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.container(id)
	if err != nil {
		return err
	}
	if tty != (c.term != nil) {
		return fmt.Errorf("container %s has tty: %v, and the attach asked for tty: %v", id, c.term != nil, tty)
	}
	if tty {
		finished := make(chan struct{})
		defer close(finished)
		go resizeTerminal(c.resize, resize, finished)
	}
	var outFailed, errFailed <-chan struct{}
	if out != nil {
		var unsubscribe func()
		outFailed, unsubscribe = c.stdout.subscribe(out)
		defer unsubscribe()
	}
	if errOut != nil {
		var unsubscribe func()
		errFailed, unsubscribe = c.stderr.subscribe(errOut)
		defer unsubscribe()
	}
	stdinDone := make(chan struct{})
	if in != nil {
		go func() {
			defer close(stdinDone)
			dst := io.Discard
			if c.stdin != nil {
				dst = c.stdin
			}
			_, _ = io.Copy(dst, in)
		}()
	}
	select {
	case <-c.done:
	case <-c.pod.ctx.Done():
	case <-stdinDone:
	case <-outFailed:
	case <-errFailed:
	}
	return nil
}

// PortForward connects stream to port on the Pod, which is the same port
// on this machine's loopback.
func (r *runtime) PortForward(_ context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	ns, name, _ := strings.Cut(sandboxID, "/")
	p, ok := r.node.pods.get(ns, name)
	if !ok {
		return fmt.Errorf("pod %s is not running on node %s", sandboxID, r.node.name)
	}
	var d net.Dialer
	conn, err := d.DialContext(p.ctx, "tcp", net.JoinHostPort(PodIP, strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("connecting to port %d of pod %s: %w", port, sandboxID, err)
	}
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(p.ctx, func() { _ = conn.Close() })
	defer stop()

	go func() {
		_, err := io.Copy(conn, stream)
		if tcp, ok := conn.(*net.TCPConn); ok && err == nil {
			// The client is done sending; the server may still answer.
			_ = tcp.CloseWrite()
			return
		}
		_ = conn.Close()
	}()
	if _, err := io.Copy(stream, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port %d of pod %s: %w", port, sandboxID, err)
	}
	return nil
}
