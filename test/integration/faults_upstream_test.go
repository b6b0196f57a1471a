package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/procstat"
)

// kipProc is a `kip serve` process of one test's own, whose file
// descriptors, goroutines and memory the test can read.
type kipProc struct{ *harness.Kip }

// startKipProc runs kip with the shared stack's flags plus extra and waits
// until /readyz says 200. Its output goes to a file, shown when the test
// fails: thousands of hostile connections would otherwise flood the test
// log.
func startKipProc(t *testing.T, extra ...string) *kipProc {
	t.Helper()
	return &kipProc{harness.StartKip(t, harness.KipOptions{Stack: stack, Args: extra})}
}

// fds counts the process's open file descriptors.
func (k *kipProc) fds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(k.Pid()) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// rssKiB is the process's resident memory, VmRSS in /proc/<pid>/status.
func (k *kipProc) rssKiB(t *testing.T) int {
	t.Helper()
	rss, err := procstat.RSS(k.Pid())
	if err != nil {
		t.Fatal(err)
	}
	return int(rss >> 10)
}

// goroutines is go_goroutines from kip's /metrics.
func (k *kipProc) goroutines(t *testing.T) int {
	t.Helper()
	return int(scrape(t, k.ProbeURL).Sample("go_goroutines", nil))
}

// goroutineDump is kip's goroutine profile, grouped by stack, to show
// what leaked when a count does not come back down.
func (k *kipProc) goroutineDump() string {
	resp, err := http.Get(k.ProbeURL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(body)
}

// settledUsage is the file descriptors and goroutines of an idle kip,
// read once two readings a second apart agree: connections and requests
// that just ended take a moment to be torn down.
func (k *kipProc) settledUsage(t *testing.T) (fds, goroutines int) {
	t.Helper()
	prevFDs, prevG := -1, -1
	for range 20 {
		fds, goroutines = k.fds(t), k.goroutines(t)
		if fds == prevFDs && goroutines == prevG {
			return fds, goroutines
		}
		prevFDs, prevG = fds, goroutines
		time.Sleep(time.Second)
	}
	return fds, goroutines
}

// Tolerances for "back where it was" once a load has ended. One leaked
// descriptor or goroutine per client connection or per request would
// exceed them many times over; the slack covers kip's own background work
// (a reconnecting informer, a new upstream connection, a readiness check
// in flight while the count is read).
const (
	fdSlack        = 8
	goroutineSlack = 25
)

// TestUpstreamRestartUnderLoadDisruptive restarts the shared kube-apiserver
// while 64 clients keep small GETs going through a kip process of the
// test's own, half over kept-alive HTTP/2 connections, half over kept-alive
// HTTP/1.1 ones. Like TestUpstreamDownAndBackDisruptive it takes the
// upstream away from every other test, and its cleanup brings it back.
// It proves that no request hangs: each one is answered, a failure with a
// metav1.Status, well inside a generous 30 s; that while the upstream is
// down the answer is kip's 503; that every client is served again once the
// upstream is back, without a restart of kip; and that kip's file
// descriptors and goroutines come back to where they were once the load
// has ended.
func TestUpstreamRestartUnderLoadDisruptive(t *testing.T) {
	const (
		clients    = 64
		failBound  = 30 * time.Second // a failure must come back within this
		whileUp    = 2 * time.Second
		whileDown  = 2 * time.Second
		afterStart = 2 * time.Second
	)
	user := harness.UniqueName("restart-load")
	grantCluster(t, userSubject(user), rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"},
	})
	kip := startKipProc(t)
	cert := rawUserCert(t, user)
	url := kip.URL + "/api/v1/namespaces/default"

	// Warm up kip's upstream connections, then read where it rests.
	warm := rawClient(t, rawHTTP2, cert)
	harness.Eventually(t, 30*time.Second, func() error { return loadGet(warm, url).err() })
	warm.CloseIdleConnections()
	baseFDs, baseG := kip.settledUsage(t)

	restartUpstreamOnCleanup(t)
	load := newRestartLoad(url)
	var loaders []*http.Client
	for i := range clients {
		proto := []rawProto{rawHTTP2, rawHTTP1}[i%2]
		client := rawClient(t, proto, cert)
		loaders = append(loaders, client)
		load.wg.Add(1)
		go load.run(i, client)
	}
	peakFDs, peakG := kip.fds(t), kip.goroutines(t)
	time.Sleep(whileUp)

	stoppedAt := time.Now()
	if err := stack.Cluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	upstreamDown = true
	time.Sleep(whileDown)
	peakFDs, peakG = max(peakFDs, kip.fds(t)), max(peakG, kip.goroutines(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := stack.Cluster.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	upstreamDown = false
	readyAt := time.Now()
	// Every client must be served again, without kip being restarted.
	harness.Eventually(t, time.Minute, func() error { return load.allServedSince(readyAt, clients) })
	time.Sleep(afterStart)
	peakFDs, peakG = max(peakFDs, kip.fds(t)), max(peakG, kip.goroutines(t))
	close(load.stop)
	load.wg.Wait()
	for _, c := range loaders {
		c.CloseIdleConnections()
	}

	load.report(t, stoppedAt, readyAt)
	load.check(t, stoppedAt, readyAt, failBound)

	var endFDs, endG int
	harness.Eventually(t, time.Minute, func() error {
		endFDs, endG = kip.fds(t), kip.goroutines(t)
		if endFDs > baseFDs+fdSlack || endG > baseG+goroutineSlack {
			return fmt.Errorf("kip holds %d file descriptors and %d goroutines after the load, %d and %d before (slack %d and %d)\n%s",
				endFDs, endG, baseFDs, baseG, fdSlack, goroutineSlack, kip.goroutineDump())
		}
		return nil
	})
	t.Logf("kip's file descriptors: %d before the load, peak %d during it, %d after; goroutines: %d before, peak %d, %d after (slack %d fds, %d goroutines)",
		baseFDs, peakFDs, endFDs, baseG, peakG, endG, fdSlack, goroutineSlack)
}

// upstreamDown is true while a disruptive test has the shared
// kube-apiserver stopped, for its cleanup.
var upstreamDown bool

// restartUpstreamOnCleanup brings the shared kube-apiserver back if the
// test stopped it and did not restart it, and waits until the shared kip
// serves again, which the tests that follow need.
func restartUpstreamOnCleanup(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if upstreamDown {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := stack.Cluster.StartAPIServer(ctx); err != nil {
				t.Errorf("starting kube-apiserver again for the tests that follow: %v", err)
				return
			}
			upstreamDown = false
		}
		harness.Eventually(t, time.Minute, func() error { return kipProbeIs("/readyz", http.StatusOK) })
	})
}

// loadResult is one request of a load client: when it started and ended,
// and kip's answer or the transport's error.
type loadResult struct {
	client     int
	start, end time.Time
	code       int
	body       []byte
	transport  error
}

func (r loadResult) err() error {
	switch {
	case r.transport != nil:
		return r.transport
	case r.code != http.StatusOK:
		return fmt.Errorf("%d: %s", r.code, r.body)
	}
	return nil
}

// loadGet sends one GET and reads the whole answer.
func loadGet(client *http.Client, url string) loadResult {
	res := loadResult{start: time.Now()}
	defer func() { res.end = time.Now() }()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		res.transport = err
		return res
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		res.transport = err
		res.end = time.Now()
		return res
	}
	defer func() { _ = resp.Body.Close() }()
	res.code = resp.StatusCode
	res.body, res.transport = io.ReadAll(resp.Body)
	res.end = time.Now()
	return res
}

// restartLoad is the record of every request the load clients sent.
type restartLoad struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	results []loadResult
}

func newRestartLoad(url string) *restartLoad {
	return &restartLoad{url: url, stop: make(chan struct{})}
}

// run sends one GET after another until stop, pausing a little between
// them as a controller between reconciles would, so that 64 clients leave
// the shared machine some air.
func (l *restartLoad) run(id int, client *http.Client) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		res := loadGet(client, l.url)
		res.client = id
		// Enough for a Status or the small GET's answer, not a runaway body.
		if len(res.body) > 16<<10 {
			res.body = res.body[:16<<10]
		}
		l.mu.Lock()
		l.results = append(l.results, res)
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// allServedSince reports an error until each of n clients has had a 200
// for a request started after t.
func (l *restartLoad) allServedSince(t time.Time, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	served := map[int]bool{}
	for _, r := range l.results {
		if r.start.After(t) && r.err() == nil {
			served[r.client] = true
		}
	}
	if len(served) < n {
		return fmt.Errorf("%d of %d clients served again since the upstream is back", len(served), n)
	}
	return nil
}

// report logs how many requests ended how, in each phase.
func (l *restartLoad) report(t *testing.T, stoppedAt, readyAt time.Time) {
	t.Helper()
	counts := map[string]int{}
	var slowest time.Duration
	for _, r := range l.results {
		phase := "before the stop"
		switch {
		case r.start.After(readyAt):
			phase = "after the upstream was ready again"
		case r.end.After(stoppedAt):
			phase = "while the upstream stopped, was down or started"
		}
		outcome := strconv.Itoa(r.code)
		if r.transport != nil {
			outcome = "transport error"
		}
		counts[phase+": "+outcome]++
		if r.err() != nil {
			slowest = max(slowest, r.end.Sub(r.start))
		}
	}
	lines := make([]string, 0, len(counts))
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(lines)
	t.Logf("%d requests; upstream ready again %v after it was stopped; slowest failure took %v\n%s",
		len(l.results), readyAt.Sub(stoppedAt).Round(time.Millisecond), slowest.Round(time.Millisecond), strings.Join(lines, "\n"))
}

// check holds every request to the rules: a 200 or a metav1.Status, never
// a hang. A failure is either kip's own answer for an upstream it cannot
// use (502, 503 or 504, naming the upstream) or, for a request sent while
// kube-apiserver was stopping or starting, kube-apiserver's own answer,
// which kip passes on: a freshly started kube-apiserver serves before its
// RBAC caches are filled and answers 403 meanwhile, while its /readyz,
// and so kip's, still fails. Once the upstream is ready, every request
// must be served.
func (l *restartLoad) check(t *testing.T, stoppedAt, readyAt time.Time, bound time.Duration) {
	t.Helper()
	var unavailable int
	seen := map[string]int{}
	for _, r := range l.results {
		if r.err() == nil {
			continue
		}
		if took := r.end.Sub(r.start); took > bound {
			t.Errorf("client %d: a request started %s failed only after %v: %v", r.client, r.start.Format("15:04:05.000"), took, r.err())
		}
		kind, err := failureKind(r, readyAt)
		if err != nil {
			t.Errorf("client %d, request started %v after the upstream was stopped: %v", r.client, r.start.Sub(stoppedAt).Round(time.Millisecond), err)
			continue
		}
		if kind == "kip 503 ServiceUnavailable" {
			unavailable++
		}
		if seen[kind]++; seen[kind] == 1 {
			t.Logf("first %s (request started %v after the upstream was stopped): %s", kind, r.start.Sub(stoppedAt).Round(time.Millisecond), r.body)
		}
	}
	t.Logf("failures by source and code: %v", seen)
	if unavailable == 0 {
		t.Error("no request got kip's 503 while the upstream was down; the test proved nothing about the outage")
	}
}

// failureKind names where a failed answer came from and what it was, or
// says why it breaks the rules.
func failureKind(r loadResult, readyAt time.Time) (string, error) {
	if r.transport != nil {
		return "", fmt.Errorf("no answer from kip: %w", r.transport)
	}
	if r.start.After(readyAt) {
		return "", fmt.Errorf("%d after the upstream was ready again: %s", r.code, r.body)
	}
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		return "", fmt.Errorf("answer %d is not a metav1.Status: %w: %s", r.code, err, r.body)
	}
	if st.Kind != "Status" || int(st.Code) != r.code || st.Message == "" {
		return "", fmt.Errorf("answer %d is not a Status with its code and a message: %s", r.code, r.body)
	}
	kind := fmt.Sprintf("%d %s", st.Code, st.Reason)
	if strings.Contains(st.Message, "the upstream API server") {
		switch r.code {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return "kip " + kind, nil
		}
		return "", fmt.Errorf("kip answered %d for its upstream: %s", r.code, r.body)
	}
	switch {
	case r.code >= 500, r.code == http.StatusTooManyRequests, r.code == http.StatusForbidden:
		return "upstream " + kind, nil
	}
	return "", fmt.Errorf("answer %d while the upstream restarted: %s", r.code, r.body)
}
