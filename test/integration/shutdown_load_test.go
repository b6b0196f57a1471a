package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestSIGTERMUnderLoad: clients keep short requests (LISTs of a few
// hundred kilobytes) going against a kip process, half over kept-alive
// HTTP/2 connections as client-go makes them and reading each answer as
// over a slow link, half on a new HTTP/1.1 connection each time; then kip
// gets SIGTERM. During
// --shutdown-delay-duration kip keeps serving while /readyz fails, so a
// load balancer can take it out (the per-request-connection clients stop
// then, as the balancer would stop sending them); then it stops accepting
// connections and drains. Every request kip accepted must end with 200 and
// its whole body, including those still in flight when draining began; a
// request arriving on an open connection after that may only get 503 with
// Retry-After; new connections are refused; and kip exits 0 within its
// grace period,
// --shutdown-delay-duration plus --request-timeout, the longest a short
// request may take to drain.
func TestSIGTERMUnderLoad(t *testing.T) {
	const (
		clients       = 16
		shutdownDelay = 2 * time.Second
		drainTimeout  = 10 * time.Second // --request-timeout
		grace         = shutdownDelay + drainTimeout
	)
	ns := createNamespace(t)
	user := harness.UniqueName("loaded")
	grant(t, ns, userSubject(user), configMapRules...)
	createBigConfigMaps(t, ns, 8, 64<<10)

	kip := harness.StartKip(t, harness.KipOptions{Stack: stack, Args: []string{
		"--shutdown-delay-duration=" + shutdownDelay.String(), "--request-timeout=" + drainTimeout.String(),
	}})

	cfg := stack.UserConfigFor(user)
	cfg.Host = kip.URL
	url := cfg.Host + "/api/v1/namespaces/" + ns + "/configmaps"
	probe := kip.ProbeURL + "/readyz"
	kept := httpClient(t, cfg, false)
	harness.Eventually(t, time.Minute, func() error { return getAll(kept, url, 0) })

	load := &shutdownLoad{url: url, stop: make(chan struct{}), outOfRotation: make(chan struct{})}
	for i := range clients {
		load.wg.Add(1)
		go load.run(httpClient(t, cfg, i%2 == 1), i%2 == 1)
	}
	time.Sleep(2 * time.Second)

	sigterm := time.Now()
	if err := kip.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, shutdownDelay, func() error {
		if resp, err := http.Get(probe); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return errors.New("/readyz still says ready after SIGTERM")
			}
		}
		return nil
	})
	// A load balancer takes kip out of rotation once /readyz fails: no new
	// connections from then on, while open ones carry on.
	close(load.outOfRotation)
	// Draining has begun once the port refuses connections: between the
	// last connection accepted and the first refused.
	var lastAccepted, refusedAt time.Time
	for deadline := time.Now().Add(grace); refusedAt.IsZero(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("kip still accepts connections %v after SIGTERM", grace)
		}
		tried := time.Now()
		conn, err := net.DialTimeout("tcp", kip.Addr, time.Second)
		if err == nil {
			lastAccepted = tried
			_ = conn.Close()
			continue
		}
		refusedAt = time.Now()
	}

	var exitedAfter time.Duration
	select {
	case <-kip.Exited():
		exitedAfter = time.Since(sigterm)
		if err := kip.Err(); err != nil {
			t.Errorf("kip exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(grace + 30*time.Second):
		t.Fatalf("kip had not exited %v after SIGTERM; its grace period is %v", grace+30*time.Second, grace)
	}
	close(load.stop)
	load.wg.Wait()

	// Draining began no later than the first sign of it a client saw: a
	// refused connection or a 503 "draining" answer. kip answers every
	// request that reaches it after that with 503, so every 200 started
	// before draining began; a 200 that ended after the first sign was
	// therefore in flight when draining began.
	drainSeen := refusedAt
	if !load.firstDraining.IsZero() && load.firstDraining.Before(drainSeen) {
		drainSeen = load.firstDraining
	}
	inFlight, afterSIGTERM := 0, 0
	for _, r := range load.served {
		if r.end.After(drainSeen) {
			inFlight++
		}
		if r.start.After(sigterm) {
			afterSIGTERM++
		}
	}
	t.Logf("%d clients: %d requests served with 200 (%d started after SIGTERM, during the shutdown delay or drain; %d in flight when draining began), "+
		"%d refused once draining began (connection refused or 503 with Retry-After), %d failed; draining seen %v and port refusing %v after SIGTERM (last accepted %v), exited %v after SIGTERM (grace %v)",
		clients, len(load.served), afterSIGTERM, inFlight, load.refused, len(load.failed),
		drainSeen.Sub(sigterm).Round(time.Millisecond), refusedAt.Sub(sigterm).Round(time.Millisecond), lastAccepted.Sub(sigterm).Round(time.Millisecond),
		exitedAfter.Round(time.Millisecond), grace)
	for _, f := range load.failed {
		t.Errorf("a request kip accepted did not end with 200 and its body: %s", f)
	}
	if exitedAfter > grace {
		t.Errorf("kip exited %v after SIGTERM, beyond its grace period of %v", exitedAfter, grace)
	}
	if refusedAt.Sub(sigterm) < shutdownDelay {
		t.Errorf("kip refused connections %v after SIGTERM, before its shutdown delay of %v was over", refusedAt.Sub(sigterm), shutdownDelay)
	}
	if afterSIGTERM == 0 {
		t.Error("no request was served after SIGTERM: kip stopped serving before its shutdown delay was over")
	}
	if inFlight == 0 {
		t.Error("no request was in flight when draining began; the test proved nothing about draining")
	}
}

// httpClient reaches kip as cfg says; fresh makes a new HTTP/1.1
// connection for every request, the other clients keep one HTTP/2
// connection.
func httpClient(t *testing.T, cfg *rest.Config, fresh bool) *http.Client {
	t.Helper()
	if !fresh {
		c, err := rest.HTTPClientFor(rest.CopyConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
}

// errNeverAccepted marks a request whose new connection closed before its
// TLS handshake finished: kip never read it. It happens to a connection
// the kernel queued just as kip closed its listener, and is a refusal, not
// a request lost.
var errNeverAccepted = errors.New("the connection closed before its TLS handshake finished")

// getAll GETs url and reads the whole answer, which must be 200, pausing
// for pace after every readChunk of it.
func getAll(client *http.Client, url string, pace time.Duration) error {
	var reused, handshaken bool
	trace := &httptrace.ClientTrace{
		GotConn:          func(info httptrace.GotConnInfo) { reused = info.Reused },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) { handshaken = err == nil },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if !reused && !handshaken {
			return fmt.Errorf("%w: %w", errNeverAccepted, err)
		}
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if err := readPaced(resp.Body, pace); err != nil {
		return fmt.Errorf("%s, body cut off: %w", resp.Status, err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
		return fmt.Errorf("%w: %s", errDraining, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// readChunk is how much of an answer a paced client reads at a time.
const readChunk = 64 << 10

// readPaced reads body to its end, pausing for pace after each readChunk:
// a client on a slow link. It keeps every LIST of the kept-alive clients
// open for a while, so that some are surely in flight when kip begins to
// drain, which is what the test is about; read at full speed, a LIST
// takes a few milliseconds and the moment draining begins could fall
// between two of them.
func readPaced(body io.Reader, pace time.Duration) error {
	if pace == 0 {
		_, err := io.Copy(io.Discard, body)
		return err
	}
	for {
		n, err := io.CopyN(io.Discard, body, readChunk)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == readChunk {
			time.Sleep(pace)
		}
	}
}

// errDraining marks a 503 with Retry-After: the answer to a request that
// arrives on an open connection once kip drains, which clients retry.
var errDraining = errors.New("kip is draining")

// shutdownLoad is the clients' record of every request.
type shutdownLoad struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup

	// outOfRotation closes when /readyz has failed: clients that open a
	// connection per request stop, as a load balancer would stop sending
	// them.
	outOfRotation chan struct{}

	mu      sync.Mutex
	served  []servedRequest
	refused int
	failed  []string
	// firstDraining is when the first 503 "draining" answer arrived.
	firstDraining time.Time
}

type servedRequest struct{ start, end time.Time }

// run sends one request after another until stop. A connection refused,
// or closed before kip finished its TLS handshake, is the answer a client
// gets once kip is draining and is not counted as a failure; everything
// else that is not a whole 200 is.
func (l *shutdownLoad) run(client *http.Client, newConnections bool) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case <-l.outOfRotation:
			if newConnections {
				return
			}
		default:
		}
		// Only the kept-alive clients read slowly: a connection per request
		// stops when kip leaves rotation, before draining begins.
		pace := 20 * time.Millisecond
		if newConnections {
			pace = 0
		}
		start := time.Now()
		err := getAll(client, l.url, pace)
		end := time.Now()
		l.mu.Lock()
		switch {
		case err == nil:
			l.served = append(l.served, servedRequest{start, end})
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, errNeverAccepted), errors.Is(err, errDraining):
			l.refused++
			if errors.Is(err, errDraining) && (l.firstDraining.IsZero() || end.Before(l.firstDraining)) {
				l.firstDraining = end
			}
		default:
			l.failed = append(l.failed, fmt.Sprintf("started %s: %v", start.Format("15:04:05.000"), err))
		}
		l.mu.Unlock()
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, errNeverAccepted) || errors.Is(err, errDraining) {
			time.Sleep(50 * time.Millisecond) // as a client backing off
		}
	}
}
