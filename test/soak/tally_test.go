package soak

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kind is one sort of request the soak sends.
type kind string

const (
	kindGet          kind = "get"
	kindList         kind = "list"
	kindPatch        kind = "patch"
	kindWatch        kind = "watch"
	kindExec         kind = "exec"
	kindPortForward  kind = "port-forward"
	kindExchange     kind = "exchange"
	kindExchangedGet kind = "get with exchanged certificate"
	// kindSignIn is the OIDC sign-in at Hydra that gives the exchange its
	// token; kip takes no part in it.
	kindSignIn kind = "sign-in at Hydra"
)

// kinds is the order the report lists them in.
var kinds = []kind{kindGet, kindList, kindPatch, kindWatch, kindExec, kindPortForward, kindExchange, kindExchangedGet, kindSignIn}

// phase says whether an error happened while the upstream restarted.
type phase string

const (
	phaseRestart phase = "restart"
	phaseSteady  phase = "steady"
)

// restartSettle is how long after kube-apiserver is ready again errors
// still count as the restart's: kip's upstream connection and the clients'
// own retries take a moment to come back.
const restartSettle = 15 * time.Second

// errorKey is what errors are counted by.
type errorKey struct {
	kind  kind
	cause string
	phase phase
}

// restart is one stop and start of kube-apiserver.
type restart struct {
	began, ready time.Time // ready is zero while it restarts
	err          error
}

// tally counts what the soak sent and what came of it. It is safe for
// concurrent use.
type tally struct {
	mu         sync.Mutex
	served     map[kind]int64
	failed     map[errorKey]int64
	example    map[errorKey]string
	lastServed map[kind]time.Time
	restarts   []restart
	// watchEvents and relists count what the watches received, and how
	// often one had to list again after its resource version expired;
	// lastEvent is when the last event arrived.
	watchEvents, relists int64
	lastEvent            time.Time
}

func newTally() *tally {
	return &tally{
		served: map[kind]int64{}, failed: map[errorKey]int64{}, example: map[errorKey]string{},
		lastServed: map[kind]time.Time{},
	}
}

// ok counts a request of kind that succeeded.
func (t *tally) ok(k kind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.served[k]++
	t.lastServed[k] = time.Now()
}

// fail counts a request of kind that failed with err, by cause and by
// whether the upstream was restarting.
func (t *tally) fail(k kind, err error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	key := errorKey{kind: k, cause: cause(err), phase: t.phaseAt(now)}
	t.failed[key]++
	if _, seen := t.example[key]; !seen {
		t.example[key] = truncate(err.Error(), 300)
	}
}

func (t *tally) watchEvent() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watchEvents++
	t.lastEvent = time.Now()
}

func (t *tally) relist() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.relists++
}

// restartBegins records that kube-apiserver is about to stop.
func (t *tally) restartBegins(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.restarts = append(t.restarts, restart{began: at})
}

// restartEnds records that kube-apiserver is ready again, or why not.
func (t *tally) restartEnds(at time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := &t.restarts[len(t.restarts)-1]
	last.ready, last.err = at, err
}

// phaseAt is phaseRestart from a restart's beginning until restartSettle
// after its end. Callers hold mu.
func (t *tally) phaseAt(at time.Time) phase {
	for _, r := range t.restarts {
		if at.Before(r.began) {
			continue
		}
		if r.ready.IsZero() || !at.After(r.ready.Add(restartSettle)) {
			return phaseRestart
		}
	}
	return phaseSteady
}

func (t *tally) restarting(at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phaseAt(at) == phaseRestart
}

// totals returns the requests served and failed so far, Hydra's sign-ins
// left out.
func (t *tally) totals() (served, failed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range t.served {
		if k != kindSignIn {
			served += n
		}
	}
	for k, n := range t.failed {
		if k.kind != kindSignIn {
			failed += n
		}
	}
	return served, failed
}

// snapshot is a copy of a tally for the report.
type snapshot struct {
	served               map[kind]int64
	failed               map[errorKey]int64
	example              map[errorKey]string
	lastServed           map[kind]time.Time
	restarts             []restart
	watchEvents, relists int64
	lastEvent            time.Time
}

func (t *tally) snapshot() snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := snapshot{
		served: map[kind]int64{}, failed: map[errorKey]int64{}, example: map[errorKey]string{}, lastServed: map[kind]time.Time{},
		restarts: slices.Clone(t.restarts), watchEvents: t.watchEvents, relists: t.relists, lastEvent: t.lastEvent,
	}
	for k, v := range t.served {
		s.served[k] = v
	}
	for k, v := range t.failed {
		s.failed[k] = v
	}
	for k, v := range t.example {
		s.example[k] = v
	}
	for k, v := range t.lastServed {
		s.lastServed[k] = v
	}
	return s
}

// failedIn sums the errors of kind k in phase p.
func (s snapshot) failedIn(k kind, p phase) int64 {
	var n int64
	for key, v := range s.failed {
		if key.kind == k && key.phase == p {
			n += v
		}
	}
	return n
}

// errWrongData is a stream that carried something other than what was
// sent: never expected, restart or not.
var errWrongData = errors.New("wrong data")

// errWatchClosedEarly is a watch that ended before its timeout.
var errWatchClosedEarly = errors.New("watch closed before its timeout")

// cause names the class of err for the report: an HTTP status with its
// reason, a class of network error, or "other".
func cause(err error) string {
	if err == nil {
		return "none"
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code != 0 {
		s := status.Status()
		return strings.TrimSpace(fmt.Sprintf("HTTP %d %s", s.Code, s.Reason))
	}
	for _, c := range []struct {
		target error
		name   string
	}{
		{errWrongData, "wrong data"},
		{errWatchClosedEarly, "watch closed early"},
		{context.DeadlineExceeded, "timeout"},
		{os.ErrDeadlineExceeded, "timeout"},
		{syscall.ECONNREFUSED, "connection refused"},
		{syscall.ECONNRESET, "connection reset"},
		{syscall.EPIPE, "broken pipe"},
		{io.ErrUnexpectedEOF, "unexpected EOF"},
		{io.EOF, "EOF"},
		{net.ErrClosed, "use of closed connection"},
	} {
		if errors.Is(err, c.target) {
			return c.name
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	var tlsErr tls.AlertError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &tlsErr) || errors.As(err, &recordErr) {
		return "TLS error"
	}
	return causeFromMessage(err.Error())
}

// causeFromMessage classifies errors that reach the soak only as text:
// exec and port-forward flatten their errors into strings.
func causeFromMessage(msg string) string {
	for _, c := range []struct{ substr, name string }{
		// A refused upgrade's Status, flattened: kip's own answer when the
		// upstream is down, and the upstream's RBAC refusal.
		{"is unavailable", "HTTP 503 ServiceUnavailable"},
		{"did not answer in time", "HTTP 504 Timeout"},
		{"is forbidden", "HTTP 403 Forbidden"},
		{"connection refused", "connection refused"},
		{"connection reset", "connection reset"},
		{"broken pipe", "broken pipe"},
		{"unexpected EOF", "unexpected EOF"},
		{"i/o timeout", "timeout"},
		{"Client.Timeout", "timeout"},
		{"deadline exceeded", "timeout"},
		{"timed out", "timeout"},
		{"bad handshake", "WebSocket handshake refused"},
		{"http2:", "HTTP/2 error"},
		{"tls:", "TLS error"},
		{"EOF", "EOF"},
	} {
		if strings.Contains(msg, c.substr) {
			return c.name
		}
	}
	if code := statusInMessage(msg); code != "" {
		return code
	}
	return "other"
}

// statusInMessage finds the status of a refused upgrade, which client-go
// reports as text such as "unable to upgrade connection: ... (503)".
func statusInMessage(msg string) string {
	for _, code := range []int{400, 401, 403, 404, 429, 500, 502, 503, 504} {
		if strings.Contains(msg, fmt.Sprintf("(%d)", code)) || strings.Contains(msg, fmt.Sprintf("status %d", code)) {
			return fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func TestCause(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"status from the upstream", apierrors.NewServiceUnavailable("down"), "HTTP 503 ServiceUnavailable"},
		{"not found", apierrors.NewNotFound(gr, "x"), "HTTP 404 NotFound"},
		{"wrapped status", fmt.Errorf("getting: %w", apierrors.NewForbidden(gr, "x", errors.New("no"))), "HTTP 403 Forbidden"},
		{"status without a reason", &apierrors.StatusError{ErrStatus: metav1.Status{Code: 502}}, "HTTP 502"},
		{"status with code 0 is not a status", &apierrors.StatusError{ErrStatus: metav1.Status{Message: "connection refused"}}, "connection refused"},
		{"refused", &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, "connection refused"},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection reset"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{"net timeout", &net.DNSError{IsTimeout: true}, "timeout"},
		{"unexpected EOF", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), "unexpected EOF"},
		{"EOF", io.EOF, "EOF"},
		{"wrong data", fmt.Errorf("exec: %w", errWrongData), "wrong data"},
		{"watch closed early", errWatchClosedEarly, "watch closed early"},
		{"tls alert", tls.AlertError(42), "TLS error"},
		{"text: refused upgrade", errors.New("unable to upgrade connection: service unavailable (503)"), "HTTP 503 Service Unavailable"},
		{"text: websocket", errors.New("websocket: bad handshake"), "WebSocket handshake refused"},
		{"text: kip's 503 for an upgrade", errors.New("unable to upgrade streaming request: the upstream API server 127.0.0.1:1 is unavailable: dial tcp 127.0.0.1:1: connect: connection refused"), "HTTP 503 ServiceUnavailable"},
		{"text: kip's 504 for an upgrade", errors.New("unable to upgrade streaming request: Timeout: the upstream API server 127.0.0.1:1 did not answer in time"), "HTTP 504 Timeout"},
		{"text: a refused upgrade", errors.New(`unable to upgrade connection: pods "p" is forbidden: User "u" cannot create resource "pods/exec"`), "HTTP 403 Forbidden"},
		{"text: http2", errors.New("http2: client connection lost"), "HTTP/2 error"},
		{"text: eof", errors.New("error reading from error stream: EOF"), "EOF"},
		{"hostile: empty message", errors.New(""), "other"},
		{"hostile: only digits", errors.New("(999)"), "other"},
		{"hostile: huge message", errors.New(strings.Repeat("x", 1<<20)), "other"},
		{"nil", nil, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cause(tc.err); got != tc.want {
				t.Fatalf("cause(%v) = %q, want %q", truncate(fmt.Sprint(tc.err), 80), got, tc.want)
			}
		})
	}
}

func TestPhase(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tl := newTally()
	tl.restartBegins(at(100))
	for _, tc := range []struct {
		name string
		at   time.Time
		want phase
	}{
		{"before any restart", at(99), phaseSteady},
		{"as it begins", at(100), phaseRestart},
		{"while it is down, no end yet", at(500), phaseRestart},
	} {
		if got := tl.restarting(tc.at); got != (tc.want == phaseRestart) {
			t.Errorf("%s: restarting = %v, want phase %s", tc.name, got, tc.want)
		}
	}
	tl.restartEnds(at(110), nil)
	tl.restartBegins(at(300))
	tl.restartEnds(at(305), errors.New("did not come back"))
	for _, tc := range []struct {
		name string
		at   time.Time
		want phase
	}{
		{"settling", at(110).Add(restartSettle), phaseRestart},
		{"settled", at(111).Add(restartSettle), phaseSteady},
		{"second restart", at(302), phaseRestart},
		{"after the second", at(400), phaseSteady},
		{"zero time", time.Time{}, phaseSteady},
	} {
		if got := tl.restarting(tc.at); got != (tc.want == phaseRestart) {
			t.Errorf("%s: restarting = %v, want phase %s", tc.name, got, tc.want)
		}
	}
	tl.fail(kindGet, apierrors.NewServiceUnavailable("x"))
	tl.ok(kindGet)
	tl.ok(kindSignIn)
	tl.fail(kindSignIn, io.EOF)
	if served, failed := tl.totals(); served != 1 || failed != 1 {
		t.Errorf("totals = %d served, %d failed; want 1 and 1 (sign-ins left out)", served, failed)
	}
	s := tl.snapshot()
	if s.failedIn(kindGet, phaseSteady) != 1 || len(s.restarts) != 2 || s.restarts[1].err == nil {
		t.Errorf("snapshot %+v", s)
	}
}
