package proxy

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Why kip ended a long-running answer itself: the values LongRunning.Ended
// hears.
const (
	// EndWriteDeadline: a write to the caller did not complete within
	// LongRunning.WriteTimeout, so the caller stopped reading.
	EndWriteDeadline = "write-deadline"
	// EndShutdown: kip began draining.
	EndShutdown = "shutdown"
	// EndRevoked: the caller's credentials were revoked.
	EndRevoked = "revoked"
	// EndClusterRemoved: a gateway stopped serving the request's cluster,
	// or replaced its entry.
	EndClusterRemoved = "cluster-removed"
	// EndCAUntrusted: kip stopped trusting the CA that signed the caller's
	// certificate.
	EndCAUntrusted = "ca-untrusted"
)

// LongRunning bounds what a long-running answer (a watch, logs -f, any
// request without a deadline) may hold on to. Upgraded connections (exec,
// attach, port-forward) are spliced, not written through kip's response
// writer, and neither bound applies to them.
type LongRunning struct {
	// WriteTimeout is how long one write of a streamed answer to its
	// caller may take; a caller that reads nothing for that long has its
	// stream reset, its upstream request cancelled and its buffers freed.
	// Zero: no bound.
	WriteTimeout time.Duration
	// Drain, once done, ends every streamed answer as a finished
	// response, so a client resumes elsewhere from where it was, and
	// refuses new long-running requests with 503 and Retry-After. Nil:
	// streams run until their connection closes.
	Drain context.Context
	// Ended hears of every stream kip ended, with EndWriteDeadline or
	// EndShutdown; nil when nobody counts them. EndWith's callers count
	// the ends they cause with the same function.
	Ended func(reason string)
}

// WithLongRunning bounds the proxy's long-running answers with l.
func WithLongRunning(l LongRunning) Option {
	return func(p *Proxy) { p.longRunning = l }
}

// draining reports whether kip no longer takes long-running requests.
func (l LongRunning) draining() bool {
	return l.Drain != nil && l.Drain.Err() != nil
}

func (l LongRunning) ended(reason string) func() {
	if l.Ended == nil {
		return nil
	}
	return func() { l.Ended(reason) }
}

// errDraining is the answer to a long-running request once kip drains:
// the same 503 with Retry-After that a short request gets from the
// generic server's wait group then, so that the client goes to another
// replica.
func errDraining() *apierrors.StatusError {
	return apierrors.NewServiceUnavailable("kip is shutting down; retry on another replica")
}

// serveLongRunning forwards a request that has no deadline: a watch, a
// log, an upgrade.
func (p *Proxy) serveLongRunning(w http.ResponseWriter, r *http.Request) {
	if p.longRunning.draining() {
		w.Header().Set("Retry-After", "1")
		writeStatus(w, errDraining())
		return
	}
	ctx := r.Context()
	if p.longRunning.Drain != nil {
		ctx = withEnd(ctx, p.longRunning.Drain, p.longRunning.ended(EndShutdown))
	}
	if timeout := p.longRunning.WriteTimeout; timeout > 0 {
		guard := newWriteGuard(w, timeout, p.longRunning.ended(EndWriteDeadline))
		defer guard.stop()
		w = guard
	}
	p.reverseFor(ctx).ServeHTTP(w, r.WithContext(ctx))
	if timeout := p.longRunning.WriteTimeout; timeout > 0 && r.ProtoMajor == 1 {
		// net/http writes the end of an HTTP/1.1 response after the
		// handler returns; that write, too, must not wait forever on a
		// caller that does not read. net/http clears the deadline once
		// the response is done.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout))
	}
}

// past is a write deadline that has passed: setting it fails a write in
// progress at once, over HTTP/1.1 (the connection's) and HTTP/2 (the
// stream's, which is reset).
var past = time.Unix(1, 0)

// writeGuard is a response writer whose every write and flush must finish
// within timeout. A timer is armed for each write and stopped after it,
// so an idle stream costs nothing and is never cut, and a write blocked
// on a caller that stopped reading has its deadline set in the past when
// the timer fires. It arms a timer rather than set a deadline per write
// because an HTTP/2 stream's write deadline is a message to the
// connection's serve loop, two per event for every watch.
type writeGuard struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	timer   *time.Timer
	ended   func()
	expired atomic.Bool
}

func newWriteGuard(w http.ResponseWriter, timeout time.Duration, ended func()) *writeGuard {
	g := &writeGuard{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout, ended: ended}
	g.timer = time.AfterFunc(time.Hour, g.expire)
	g.timer.Stop()
	return g
}

func (g *writeGuard) expire() {
	if !g.expired.CompareAndSwap(false, true) {
		return
	}
	// Counted before the deadline cuts the stream, so that whoever sees
	// the stream end (its upstream request cancelled) sees it counted.
	if g.ended != nil {
		g.ended()
	}
	_ = g.rc.SetWriteDeadline(past)
}

func (g *writeGuard) Write(p []byte) (int, error) {
	g.timer.Reset(g.timeout)
	n, err := g.ResponseWriter.Write(p)
	g.timer.Stop()
	return n, err
}

// FlushError is what http.ResponseController.Flush, and so
// httputil.ReverseProxy, calls after each write of a stream.
func (g *writeGuard) FlushError() error {
	g.timer.Reset(g.timeout)
	err := g.rc.Flush()
	g.timer.Stop()
	return err
}

func (g *writeGuard) Flush() { _ = g.FlushError() }

// Unwrap gives http.ResponseController the writer underneath, for a
// hijack (an upgrade) and deadlines.
func (g *writeGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (g *writeGuard) stop() { g.timer.Stop() }
