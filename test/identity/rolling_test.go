package identity

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestRollingRestart: two kip replicas share the signer CA Secret behind a
// TCP load balancer that follows their /readyz. 32 clients, in turn using
// a certificate from the cluster's client CA, a certificate kip issued and
// an OIDC ID token, each keep one client-go connection as client-go does,
// send short GETs over it and hold one watch on it, a RetryWatcher that
// resumes from the last resourceVersion it saw, as a reflector does. The
// replicas are then restarted one after the other: SIGTERM, during whose
// --shutdown-delay-duration /readyz fails and the balancer stops sending
// the replica new connections; once the delay has passed, kip ends its
// watches as finished responses; exit; start again; ready; then the other.
// --request-timeout is two minutes: each replica must exit within a
// quarter of it, which it could not if it still waited for its open
// watches, and the test logs when each did.
// Before, during and after each step the test writes a marker ConfigMap
// (straight to the upstream).
//
// What counts as a failed short request: client-go returned an error or
// the wrong object; or client-go had to send it more than twice; or it
// sent it twice and the first attempt ended otherwise than with 503 and
// Retry-After (kip's answer while draining) or on a connection no kip
// ever accepted (closed before its TLS handshake finished). client-go
// retries such GETs by itself and its user sees no error, so one such
// retry is allowed, and each is counted and logged with its reason; but a
// connection cut once a request was on it is a request kip dropped, and
// fails the test even though client-go hid it by retrying. Not visible
// here, and not a failure either: a request that Go's HTTP/2 transport
// sends again on a new connection because kip's GOAWAY said kip never
// processed it.
//
// What counts as a lost event: a watcher that did not see every marker,
// once each and in the order written, or whose watch ended or reported an
// error. A RetryWatcher never relists; if its resourceVersion were too old
// to resume from, it would report an error, which fails the test. Every
// watcher must also have had its watch cut and resumed at least once, or
// the test proved nothing.
func TestRollingRestart(t *testing.T) {
	const (
		clients       = 32
		shutdownDelay = 2 * time.Second
		// requestTimeout is long, so that an exit that waited for it (as
		// kip's did while a watch was open) cannot pass for one that
		// did not.
		requestTimeout = 2 * time.Minute
		// Once the shutdown delay has passed, kip ends its watches and
		// exits when its short requests have drained. exitBound is a
		// correctness bound far from waiting out requestTimeout, not a
		// speed claim.
		exitBound = shutdownDelay + requestTimeout/4
	)
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	group := harness.UniqueName("rolling-readers")
	grantConfigMapReaders(t, ns, group)
	createTarget(t, ns)
	markers := newMarkers(t, ns)

	replicas := startRollingReplicas(t, ns, 2,
		"--shutdown-delay-duration="+shutdownDelay.String(), "--request-timeout="+requestTimeout.String())
	kips := make([]*harness.Kip, len(replicas))
	for i, r := range replicas {
		kips[i] = r.Kip
	}
	lb := harness.StartBalancer(t, kips)
	for _, r := range replicas {
		r.lb = lb
	}
	creds := loadCredentials(t, loadCredential{}.config(lb.URL()), group)
	load := startRollingLoad(t, lb.URL(), ns, markers.initialRV, creds, clients)
	load.waitForProgress(t, "the load started")

	markers.write(t, "before the restart")
	var exits []string
	for _, r := range replicas {
		exited := r.restart(t, markers, exitBound)
		exits = append(exits, exited.Round(10*time.Millisecond).String())
		load.waitForProgress(t, fmt.Sprintf("replica %d restarted", r.index))
	}
	markers.write(t, "after the restart")
	load.waitForMarkers(t, len(markers.phases))

	stats := load.stop()
	t.Logf("with open watches, the replicas exited %s after SIGTERM (--shutdown-delay-duration %v, --request-timeout %v, bound %v)",
		strings.Join(exits, " and "), shutdownDelay, requestTimeout, exitBound)
	t.Logf("%d clients: %d short requests answered first time, %d after one retry by client-go (%s), %d failed; "+
		"%d watch requests (%d answered with an error or not at all, retried by the RetryWatcher); balancer: %d connections to replica 0, %d to replica 1, %d with no backend",
		clients, stats.answered, stats.retried, stats.retryReasons(), len(stats.failed),
		stats.watches, len(stats.watchStartErrors), lb.Accepted(0), lb.Accepted(1), lb.RefusedConnections())
	for _, f := range stats.failed {
		t.Errorf("short request failed: %s", f)
	}
	for _, c := range load.clients {
		c.check(t, markers.phases)
	}
	if n := lb.RefusedConnections(); n > 0 {
		t.Errorf("the balancer found no ready backend for %d connections, though one replica was always up", n)
	}
}

// markers is the ConfigMap whose updates the watchers must all see.
type markers struct {
	ns        string
	initialRV string
	// phases[i] names the update whose data says phase i+1.
	phases []string
}

const markerName = "marker"

func newMarkers(t *testing.T, ns string) *markers {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: markerName}, Data: map[string]string{"phase": "0"}}
	created, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &markers{ns: ns, initialRV: created.ResourceVersion}
}

// write updates the marker, straight at the upstream, to the next phase.
func (m *markers) write(t *testing.T, what string) {
	t.Helper()
	m.phases = append(m.phases, what)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: markerName},
		Data: map[string]string{"phase": strconv.Itoa(len(m.phases)), "what": what}}
	if _, err := adminClient(t).CoreV1().ConfigMaps(m.ns).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rollingReplica is a kip process that can be stopped and started again
// on the same ports, as a restarted container keeps its pod's address.
type rollingReplica struct {
	*harness.Kip
	index int
	// lb is the balancer in front of it, once there is one.
	lb *harness.Balancer
}

// startRollingReplicas starts n replicas at once with the signer CA in
// ns's Secret and extra flags, and returns them once all are ready.
func startRollingReplicas(t *testing.T, ns string, n int, extra ...string) []*rollingReplica {
	t.Helper()
	replicas := make([]*rollingReplica, n)
	kips := make([]*harness.Kip, n)
	for i := range replicas {
		k := harness.PrepareKip(t, harness.KipOptions{Name: fmt.Sprintf("kip-%d", i), Binary: env.kip, Stack: env.stack})
		k.Args = append(k.Args, "--authentication-config="+env.idp.AuthenticationConfigFile, "--signer-ca-secret="+ns+"/"+signerSecret,
			fmt.Sprintf("--signer-ca-lease-identity=kip-rolling-%d_%s", i, k.Addr))
		k.Args = append(k.Args, extra...)
		replicas[i], kips[i] = &rollingReplica{Kip: k, index: i}, k
	}
	harness.StartReplicas(t, kips)
	return replicas
}

// restart stops the replica with SIGTERM and starts it again once it has
// exited, writing a marker at each step. It returns how long the replica
// took to exit.
func (r *rollingReplica) restart(t *testing.T, m *markers, exitBound time.Duration) time.Duration {
	t.Helper()
	sigterm := r.terminate(t)
	m.write(t, fmt.Sprintf("replica %d told to stop", r.index))
	r.waitOutOfRotation(t)
	r.waitForExit(t, sigterm.Add(exitBound))
	exited := time.Since(sigterm)
	t.Logf("replica %d exited %v after SIGTERM", r.index, exited.Round(10*time.Millisecond))
	m.write(t, fmt.Sprintf("replica %d stopped", r.index))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, fmt.Sprintf("the balancer never saw replica %d ready again", r.index), func() bool { return r.lb.Ready(r.index) })
	m.write(t, fmt.Sprintf("replica %d back", r.index))
	return exited
}

// terminate sends SIGTERM, as the kubelet does to a pod being replaced,
// and returns when.
func (r *rollingReplica) terminate(t *testing.T) time.Time {
	t.Helper()
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// waitOutOfRotation returns once the balancer has taken the replica out
// because its /readyz failed, and insists that happened while it was still
// running: during its shutdown delay, not because it was gone.
func (r *rollingReplica) waitOutOfRotation(t *testing.T) {
	t.Helper()
	for r.lb.Ready(r.index) {
		if r.HasExited() {
			t.Fatalf("replica %d exited before its /readyz failed", r.index)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.HasExited() {
		t.Errorf("replica %d left the rotation only when it exited, not when its /readyz failed", r.index)
	}
}

// waitForExit waits, until deadline at most, for the replica to exit, and
// insists it exited 0.
func (r *rollingReplica) waitForExit(t *testing.T, deadline time.Time) {
	t.Helper()
	select {
	case <-r.Exited():
	case <-time.After(time.Until(deadline)):
		t.Fatalf("replica %d still running at %s: %s", r.index, deadline.Format("15:04:05.000"), r.LogTail())
	}
	if err := r.Err(); err != nil {
		t.Errorf("replica %d exited with %v after SIGTERM, want 0: %s", r.index, err, r.LogTail())
	}
}

// rollingLoad is the clients of TestRollingRestart.
type rollingLoad struct {
	clients []*rollingClient
	done    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// rollingClient is one client-go user: short GETs and one watch, over one
// connection of its own.
type rollingClient struct {
	name   string
	ns     string
	client kubernetes.Interface

	mu               sync.Mutex
	answered         int
	retried          []string // the first attempt's outcome, per retried request
	failed           []string
	watches          int      // watch requests sent
	watchStartErrors []string // watch requests answered with an error
	seen             []int    // marker phases, in the order the watch delivered them
	watchProblems    []string // error events, or the watch ending
}

func startRollingLoad(t *testing.T, host, ns, fromRV string, creds []loadCredential, n int) *rollingLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &rollingLoad{done: make(chan struct{}), cancel: cancel}
	t.Cleanup(l.halt)
	for i := range n {
		cred := creds[i%len(creds)]
		c := &rollingClient{name: fmt.Sprintf("#%d (%s)", i, cred.kind), ns: ns}
		cfg := cred.config(host)
		// A dialer of its own gives the client a transport, and so a
		// connection, of its own, as a separate process has.
		cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
		cfg.QPS, cfg.Burst = 1000, 1000
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return &recordingTransport{next: rt, client: c} }
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.client = cs
		if err := c.startWatch(ctx, fromRV, &l.wg); err != nil {
			t.Fatal(err)
		}
		l.clients = append(l.clients, c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c.getUntil(l.done)
		}()
	}
	return l
}

// attemptsKey marks a short request's context with the list its attempts
// are recorded in.
type attemptsKey struct{}

// recordingTransport records, under client-go's retries, what each
// attempt got, and counts the watch requests.
type recordingTransport struct {
	next   http.RoundTripper
	client *rollingClient
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var conn connTrace
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), conn.trace()))
	resp, err := rt.next.RoundTrip(req)
	outcome := conn.outcome(resp, err)
	if attempts, ok := req.Context().Value(attemptsKey{}).(*[]string); ok {
		*attempts = append(*attempts, outcome)
	}
	if req.URL.Query().Get("watch") == "true" {
		rt.client.mu.Lock()
		rt.client.watches++
		if outcome != "200" {
			rt.client.watchStartErrors = append(rt.client.watchStartErrors, outcome)
		}
		rt.client.mu.Unlock()
	}
	return resp, err
}

// connTrace follows the connection one attempt went out on.
type connTrace struct {
	mu sync.Mutex
	// sent: the attempt went out on a connection kip had accepted, a
	// kept-alive one or a new one whose TLS handshake finished.
	sent bool
}

func (c *connTrace) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			c.mu.Lock()
			c.sent = c.sent || info.Reused
			c.mu.Unlock()
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			c.mu.Lock()
			c.sent = c.sent || err == nil
			c.mu.Unlock()
		},
	}
}

// What an attempt may end with and still be retried without counting as a
// failure: the answer kip gives while draining, and a connection that no
// kip ever accepted (the balancer found no backend, or a listener closed
// with the connection still queued).
const (
	retryAfterOutcome   = "503 with Retry-After"
	neverAcceptedPrefix = "connection never accepted: "
)

// outcome names what one attempt got, coarsely enough to count. A
// connection cut once the request was on its way is a request kip
// dropped, not one a restart may cost.
func (c *connTrace) outcome(resp *http.Response, err error) string {
	c.mu.Lock()
	sent := c.sent
	c.mu.Unlock()
	switch {
	case err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return retryAfterOutcome
	case err == nil:
		return strconv.Itoa(resp.StatusCode)
	case !sent:
		return neverAcceptedPrefix + err.Error()
	default:
		return "cut on an accepted connection: " + err.Error()
	}
}

// retryAllowed: an attempt that ended so may be retried once.
func retryAllowed(outcome string) bool {
	return outcome == retryAfterOutcome || strings.HasPrefix(outcome, neverAcceptedPrefix)
}

// getUntil GETs the target ConfigMap until done.
func (c *rollingClient) getUntil(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-time.After(loadPause):
		}
		var attempts []string
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), attemptsKey{}, &attempts), 30*time.Second)
		start := time.Now()
		cm, err := c.client.CoreV1().ConfigMaps(c.ns).Get(ctx, loadTarget, metav1.GetOptions{})
		cancel()
		c.mu.Lock()
		switch {
		case err != nil:
			c.failed = append(c.failed, fmt.Sprintf("client %s, started %s: %v (attempts: %q)", c.name, start.Format("15:04:05.000"), err, attempts))
		case cm.Name != loadTarget:
			c.failed = append(c.failed, fmt.Sprintf("client %s, started %s: got ConfigMap %q", c.name, start.Format("15:04:05.000"), cm.Name))
		case len(attempts) > 2:
			c.failed = append(c.failed, fmt.Sprintf("client %s, started %s: answered only after %d attempts: %q", c.name, start.Format("15:04:05.000"), len(attempts), attempts))
		case len(attempts) == 2 && !retryAllowed(attempts[0]):
			c.failed = append(c.failed, fmt.Sprintf("client %s, started %s: answered only after a retry client-go made because %s", c.name, start.Format("15:04:05.000"), attempts[0]))
		case len(attempts) == 2:
			c.retried = append(c.retried, attempts[0])
		default:
			c.answered++
		}
		c.mu.Unlock()
	}
}

// startWatch watches the marker from fromRV with a RetryWatcher, which
// resumes from the last resourceVersion it delivered whenever the watch
// ends, and never relists.
func (c *rollingClient) startWatch(ctx context.Context, fromRV string, wg *sync.WaitGroup) error {
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		opts.FieldSelector = "metadata.name=" + markerName
		return c.client.CoreV1().ConfigMaps(c.ns).Watch(ctx, opts)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, fromRV, lw)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Stop()
		c.follow(ctx, w)
	}()
	return nil
}

// follow records every marker phase the watch delivers.
func (c *rollingClient) follow(ctx context.Context, w *watchtools.RetryWatcher) {
	for ev := range w.ResultChan() {
		c.mu.Lock()
		switch cm, ok := ev.Object.(*corev1.ConfigMap); {
		case ev.Type == watch.Modified && ok:
			phase, err := strconv.Atoi(cm.Data["phase"])
			if err != nil {
				c.watchProblems = append(c.watchProblems, fmt.Sprintf("marker without a phase: %v", cm.Data))
			}
			c.seen = append(c.seen, phase)
		default:
			c.watchProblems = append(c.watchProblems, fmt.Sprintf("unexpected %s event: %v", ev.Type, ev.Object))
		}
		c.mu.Unlock()
	}
	if ctx.Err() == nil {
		c.mu.Lock()
		c.watchProblems = append(c.watchProblems, "the RetryWatcher stopped")
		c.mu.Unlock()
	}
}

// waitForProgress returns once every client has had progressPerStep more
// short requests answered.
func (l *rollingLoad) waitForProgress(t *testing.T, after string) {
	t.Helper()
	before := make([]int, len(l.clients))
	for i, c := range l.clients {
		before[i] = c.answeredCount()
	}
	eventually(t, time.Minute, "some client had no short request answered after "+after, func() bool {
		for i, c := range l.clients {
			if c.answeredCount() < before[i]+progressPerStep {
				return false
			}
		}
		return true
	})
}

// answeredCount counts the short requests answered, with or without a retry.
func (c *rollingClient) answeredCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered + len(c.retried)
}

// waitForMarkers returns once every watcher has seen phase n, or one of
// them has a problem.
func (l *rollingLoad) waitForMarkers(t *testing.T, n int) {
	t.Helper()
	eventually(t, time.Minute, "some watcher never saw the last marker", func() bool {
		for _, c := range l.clients {
			c.mu.Lock()
			last, problems := 0, len(c.watchProblems)
			if len(c.seen) > 0 {
				last = c.seen[len(c.seen)-1]
			}
			c.mu.Unlock()
			if problems > 0 {
				return true // reported by check
			}
			if last < n {
				return false
			}
		}
		return true
	})
}

type rollingStats struct {
	answered, retried, watches int
	reasons                    map[string]int
	failed, watchStartErrors   []string
}

// stop ends the load and sums what the clients saw.
func (l *rollingLoad) stop() rollingStats {
	l.halt()
	s := rollingStats{reasons: map[string]int{}}
	for _, c := range l.clients {
		c.mu.Lock()
		s.answered += c.answered
		s.retried += len(c.retried)
		for _, r := range c.retried {
			s.reasons[r]++
		}
		s.failed = append(s.failed, c.failed...)
		s.watches += c.watches
		s.watchStartErrors = append(s.watchStartErrors, c.watchStartErrors...)
		c.mu.Unlock()
	}
	return s
}

func (l *rollingLoad) halt() {
	select {
	case <-l.done:
		return
	default:
	}
	close(l.done)
	l.cancel()
	l.wg.Wait()
}

func (s rollingStats) retryReasons() string {
	if len(s.reasons) == 0 {
		return "none"
	}
	var out []string
	for r, n := range s.reasons {
		out = append(out, fmt.Sprintf("%d× %s", n, r))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// check insists the watcher saw every marker once, in order, without a
// problem, and that its watch was resumed at least once.
func (c *rollingClient) check(t *testing.T, phases []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.watchProblems {
		t.Errorf("watcher %s: %s", c.name, p)
	}
	var want []int
	for i := range phases {
		want = append(want, i+1)
	}
	if fmt.Sprint(c.seen) != fmt.Sprint(want) {
		var missed []string
		for i, what := range phases {
			if !slices.Contains(c.seen, i+1) {
				missed = append(missed, fmt.Sprintf("%d (%s)", i+1, what))
			}
		}
		t.Errorf("watcher %s saw markers %v, want %v; missed %v", c.name, c.seen, want, missed)
	}
	if c.watches < 2 {
		t.Errorf("watcher %s sent %d watch requests: its watch was never cut and resumed, though both replicas restarted", c.name, c.watches)
	}
}
