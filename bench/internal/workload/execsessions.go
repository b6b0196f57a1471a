package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// outputLine is what the exec stream repeats: text like a build log's, so
// the recording escapes what a terminal's output makes it escape (a tab,
// the newline) and no more.
const outputLine = "ok  \tgithub.com/kip-proxy/kip/internal/recording\t0.365s (cached) coverage: 91.2% of statements"

// streamCommand writes exactly size bytes of outputLine to stdout, as fast
// as a pipe carries them: the test node runs it as a real process.
func streamCommand(size int64) []string {
	return []string{"sh", "-c", fmt.Sprintf("yes '%s' | head -c %d", outputLine, size)}
}

// execURL is an exec of cmd in the shell Pod, as cfg reaches it.
func execURL(cfg *rest.Config, stdin bool, cmd []string) (*url.URL, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return client.CoreV1().RESTClient().Post().Namespace(recNamespace).Resource("pods").Name(recShell).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: cmd, Stdin: stdin, Stdout: true, Stderr: !stdin}, scheme.ParameterCodec).URL(), nil
}

// executor is client-go's executor for protocol, as kubectl uses it.
func executor(cfg *rest.Config, protocol string, u *url.URL) (remotecommand.Executor, error) {
	if protocol == protoWebSocket {
		return remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, u.String())
	}
	return remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
}

// execTransfer is an exec through t that writes size bytes to stdout,
// counted as they arrive.
func execTransfer(t *load.Target, cfg *rest.Config, protocol string, size int64) (transfer, error) {
	u, err := execURL(cfg, false, streamCommand(size))
	if err != nil {
		return transfer{}, err
	}
	return transfer{target: t, kind: kindExec, protocol: protocol, run: func(ctx context.Context) error {
		exe, err := executor(cfg, protocol, u)
		if err != nil {
			return err
		}
		var stdout counter
		// client-go may still be copying stderr when a cancelled stream
		// returns, so the buffer is read under a lock.
		var stderr harness.SyncBuffer
		if err := exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
			return fmt.Errorf("%w (stderr %q)", err, stderr.String())
		}
		if n := stdout.n.Load(); n != size {
			return fmt.Errorf("exec wrote %d bytes to stdout, want %d (stderr %q)", n, size, stderr.String())
		}
		return nil
	}}, nil
}

// counter counts what is written to it.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// greeting is what an idle session echoes once, to show that it runs end
// to end before it idles.
const greeting = "hello\n"

// idleSession is an exec of cat that echoed the greeting and now waits for
// more input, holding its streams open through every hop.
type idleSession struct {
	stdin  *io.PipeWriter
	done   chan error
	cancel context.CancelFunc
}

// sessionOpenTimeout bounds how long a session may take to echo.
const sessionOpenTimeout = time.Minute

func openIdleSession(ctx context.Context, cfg *rest.Config, protocol string, u *url.URL) (*idleSession, error) {
	exe, err := executor(cfg, protocol, u)
	if err != nil {
		return nil, err
	}
	// The session outlives this call: its context is not the caller's
	// deadline, only its cancellation.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	inR, inW := io.Pipe()
	echo := &echoWaiter{want: []byte(greeting), seen: make(chan struct{})}
	s := &idleSession{stdin: inW, done: make(chan error, 1), cancel: func() { stop(); cancel() }}
	go func() {
		err := exe.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: inR, Stdout: echo})
		// Unblocks the greeting's write if the session never read it.
		_ = inR.Close()
		s.done <- err
	}()
	go func() { _, _ = inW.Write([]byte(greeting)) }()
	select {
	case <-echo.seen:
		return s, nil
	case err := <-s.done:
		s.cancel()
		if err == nil {
			err = errors.New("the session ended before it echoed")
		}
		return nil, err
	case <-time.After(sessionOpenTimeout):
		s.cancel()
		return nil, errors.Join(fmt.Errorf("no echo within %s", sessionOpenTimeout), <-s.done)
	}
}

// close ends stdin, so cat exits and the session ends as a user's would,
// and waits for that, within reason.
func (s *idleSession) close() error {
	_ = s.stdin.Close()
	defer s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		s.cancel()
		return errors.Join(errors.New("the session did not end within 30s of its stdin"), <-s.done)
	}
}

// echoWaiter closes seen once what was written to it starts with want.
type echoWaiter struct {
	want []byte
	seen chan struct{}
	mu   sync.Mutex
	got  []byte
	once sync.Once
}

func (e *echoWaiter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) < len(e.want) {
		e.got = append(e.got, p[:min(len(p), len(e.want)-len(e.got))]...)
		if bytes.Equal(e.got, e.want) {
			e.once.Do(func() { close(e.seen) })
		}
	}
	return len(p), nil
}

// openConcurrency is how many sessions open at once.
const openConcurrency = 16

// warmSessions are opened and closed before the baseline is read, so that
// what a kip does once (its first upgrade, the recording directory for
// the day) is not counted per session.
const warmSessions = 4

// holdSessions opens RecordingSessions idle exec sessions through t and
// reads t's memory with none and with all of them open, each after a
// forced GC and a pause.
func holdSessions(ctx context.Context, env Env, t *load.Target, probe, protocol string) (results.SessionMemory, error) {
	n := env.Sizes.RecordingSessions
	m := results.SessionMemory{Target: t.Name, Protocol: protocol, Sessions: n, OpenConcurrency: openConcurrency}
	cfg := env.Rig.UserConfigFor(t)
	u, err := execURL(cfg, true, []string{"cat"})
	if err != nil {
		return m, err
	}
	warm, err := openSessions(ctx, cfg, protocol, u, warmSessions)
	if err := errors.Join(err, closeSessions(warm)); err != nil {
		return m, fmt.Errorf("warming up: %w", err)
	}
	var heapBefore, heapOpen float64
	if m.RSSBefore, heapBefore, err = settledMemory(ctx, env, t, probe); err != nil {
		return m, err
	}
	start := time.Now()
	sessions, err := openSessions(ctx, cfg, protocol, u, n)
	m.OpenSeconds = time.Since(start).Seconds()
	m.Opened = len(sessions)
	m.FirstError = errString(err)
	var merr error
	m.RSSOpen, heapOpen, merr = settledMemory(ctx, env, t, probe)
	cerr := closeSessions(sessions)
	if m.Opened > 0 {
		m.RSSPerSession = float64(m.RSSOpen-m.RSSBefore) / float64(m.Opened)
		m.HeapPerSession = (heapOpen - heapBefore) / float64(m.Opened)
	}
	return m, errors.Join(err, merr, cerr)
}

// settledMemory forces a GC in kip (the heap profile's gc=1), lets memory
// settle, then reads its RSS and its Go heap and stacks in use.
func settledMemory(ctx context.Context, env Env, t *load.Target, probe string) (rssBytes int64, heap float64, err error) {
	if err := childproc.GetOK(ctx, http.DefaultClient, probe+"/debug/pprof/heap?gc=1"); err != nil {
		return 0, 0, err
	}
	sleep(ctx, 2*env.Sizes.Settle)
	rssBytes = rss(t.PID)
	stacks, inuse, err := memoryAt(ctx, probe)
	return rssBytes, stacks + inuse, err
}

// memoryAt reads the Go runtime's stacks and heap in use from the
// /metrics of the kip whose probe port is probe.
func memoryAt(ctx context.Context, probe string) (stacks, heap float64, err error) {
	body, err := profileSource{who: "kip", client: http.DefaultClient, base: probe}.fetch(ctx, "/metrics")
	if err != nil {
		return 0, 0, err
	}
	if stacks, err = gauge(body, "go_memstats_stack_inuse_bytes"); err != nil {
		return 0, 0, err
	}
	heap, err = gauge(body, "go_memstats_heap_inuse_bytes")
	return stacks, heap, err
}

// openSessions opens n idle sessions, openConcurrency at a time. It
// returns those that opened, and the first error of those that did not.
func openSessions(ctx context.Context, cfg *rest.Config, protocol string, u *url.URL, n int) ([]*idleSession, error) {
	var mu sync.Mutex
	var out []*idleSession
	var firstErr error
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for range min(openConcurrency, n) {
		wg.Go(func() {
			for range work {
				if ctx.Err() != nil {
					return
				}
				s, err := openIdleSession(ctx, cfg, protocol, u)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if s != nil {
					out = append(out, s)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out, errors.Join(firstErr, ctx.Err())
}

// closeSessions closes every session at once and returns the first error.
func closeSessions(sessions []*idleSession) error {
	errs := make(chan error, len(sessions))
	for _, s := range sessions {
		go func() { errs <- s.close() }()
	}
	var first error
	for range sessions {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
