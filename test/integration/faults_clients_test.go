package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/procstat"
)

// Section 10 of docs/security.md, faults and load, from the client's side:
// clients that hold on to kip's resources (slowloris, unread watches, idle
// TLS connections). faults_upstream_test.go holds the upstream's faults.

// TestAbusiveClients runs clients that hold on to kip's resources without
// ever finishing a request, each against a kip process of its own, and
// proves that kip stays responsive to a normal client meanwhile and that
// its memory stays bounded. Bounds are generous: they hold for a healthy
// kip many times over and break only for a leak; no timing is asserted.
func TestAbusiveClients(t *testing.T) {
	raiseOpenFileLimit(t, 2*idleConnections+1000)
	// Each kind runs against a kip of its own, all at the same time:
	// slowloris takes kip's header read timeout (32 s) to prove anything,
	// and the others fit in that wait. Not t.Parallel, which -parallel
	// would cap at the machine's two cores; and the parent returns only
	// when all three have, so no other test of the package runs meanwhile.
	var wg sync.WaitGroup
	for name, abuse := range map[string]func(*testing.T){
		"slowloris":            testSlowloris,
		"watch never read":     testUnreadWatch,
		"idle TLS connections": testIdleTLS,
	} {
		wg.Go(func() { t.Run(name, func(t *testing.T) { abuse(t) }) })
	}
	wg.Wait()
}

// raiseOpenFileLimit lifts this process's soft limit on open files to at
// least want, up to the hard limit; kip processes started afterwards
// inherit it. It skips the test when the hard limit is too low.
func raiseOpenFileLimit(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		t.Skipf("the hard limit on open files is %d; this test needs %d", lim.Max, want)
	}
	old := lim.Cur
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lim.Cur = old
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}

// responsive reports an error unless a normal client is served a GET by kip.
func responsive(client *http.Client, url string) error {
	if err := loadGet(client, url).err(); err != nil {
		return fmt.Errorf("a normal client was not served: %w", err)
	}
	return nil
}

// slowlorisConnections of each kind: TLS done, then a request header one
// byte a second; or a TLS handshake record one byte a second.
const slowlorisConnections = 100

// testSlowloris opens connections that send one byte a second and never
// finish: half finish the TLS handshake and then trickle a request header,
// half trickle the handshake itself. kip must close every one of them (its
// header read timeout, which also bounds the handshake) and serve a normal
// client meanwhile.
func testSlowloris(t *testing.T) {
	kip := startKipProc(t)
	user := harness.UniqueName("patient")
	grantNamespaceGet(t, user)
	normal := rawClient(t, rawHTTP2, rawUserCert(t, user))
	url := kip.URL + "/api/v1/namespaces/default"
	addr := strings.TrimPrefix(kip.URL, "https://")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	opened := time.Now()
	closedAfter := make(chan time.Duration, 2*slowlorisConnections)
	for i := range 2 * slowlorisConnections {
		conn, err := slowConn(t, addr, i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			closedAfter <- trickle(ctx, conn, opened)
		}()
	}
	kipFDs := kip.fds(t)

	// Served throughout, while the connections hang on.
	served := 0
	for deadline := time.Now().Add(90 * time.Second); len(closedAfter) < cap(closedAfter); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d slow connections still open 90 s after they opened", cap(closedAfter)-len(closedAfter), cap(closedAfter))
		}
		if err := responsive(normal, url); err != nil {
			t.Fatalf("with %d slow connections open: %v", cap(closedAfter)-len(closedAfter), err)
		}
		served++
	}
	cancel()
	wg.Wait()
	close(closedAfter)
	var first, last time.Duration
	for d := range closedAfter {
		if first == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	t.Logf("%d slow connections (%d trickling a header after TLS, %d trickling the handshake); kip held %d file descriptors with them open; "+
		"it closed them %v to %v after they opened; a normal client was served %d times meanwhile",
		2*slowlorisConnections, slowlorisConnections, slowlorisConnections, kipFDs, first.Round(time.Second), last.Round(time.Second), served)
	if kipFDs < 2*slowlorisConnections {
		t.Errorf("kip held only %d file descriptors with %d slow connections open: they did not all reach it", kipFDs, 2*slowlorisConnections)
	}
	if err := responsive(normal, url); err != nil {
		t.Fatal(err)
	}
}

// slowConn opens a connection to kip and starts it off: a TLS handshake
// and the start of a request, or just the header of a TLS handshake record
// that announces a large record to come.
func slowConn(t *testing.T, addr string, afterTLS bool) (net.Conn, error) {
	t.Helper()
	if !afterTLS {
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return nil, err
		}
		// Content type handshake, TLS 1.0 record version, 16 KiB to come.
		_, err = conn.Write([]byte{0x16, 0x03, 0x01, 0x40, 0x00})
		return conn, err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, kipTLSConfig(nil, "http/1.1"))
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(conn, "GET /api/v1/namespaces/default HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: ")
	return conn, err
}

// trickle writes a byte a second to conn until kip closes it or ctx ends,
// and returns how long after opened kip closed it.
func trickle(ctx context.Context, conn net.Conn, opened time.Time) time.Duration {
	defer func() { _ = conn.Close() }()
	closed := make(chan time.Time, 1)
	go func() {
		// kip sends nothing; a read returns when it closes.
		_, _ = conn.Read(make([]byte, 1))
		closed <- time.Now()
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case at := <-closed:
			return at.Sub(opened)
		case <-ctx.Done():
			return 0
		case <-tick.C:
			_, _ = conn.Write([]byte("a"))
		}
	}
}

// grantNamespaceGet lets user GET namespaces, the small request the
// normal clients send.
func grantNamespaceGet(t *testing.T, user string) {
	t.Helper()
	grantCluster(t, userSubject(user), rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"},
	})
}

// namespaceReader is a new user who may GET namespaces: their client
// certificate, and an HTTP/2 client presenting it, the normal client of
// the abuse tests.
func namespaceReader(t *testing.T, name string) (*tls.Certificate, *http.Client) {
	t.Helper()
	user := harness.UniqueName(name)
	grantNamespaceGet(t, user)
	cert := rawUserCert(t, user)
	return cert, rawClient(t, rawHTTP2, cert)
}

// testUnreadWatch opens two watches through kip, one over HTTP/1.1 and
// one over HTTP/2, and never reads a byte of their events, while ConfigMap
// updates produce about 62 MiB of them. Another client's watch through the
// same kip must see every update, normal GETs must be served, and kip's
// memory must grow far less than the events produced: kip may hold what
// flow control lets in for a stuck watch, not everything the upstream
// sends. Then kip must end both stuck watches at --stream-write-timeout,
// once a write to them has waited that long, and give back what they held:
// its live heap goes back to where it was before they opened.
func testUnreadWatch(t *testing.T) {
	const (
		objects, rounds, size = 8, 8, 1000 << 10 // 64 updates of ~1 MB
		growthBound           = 32 << 10         // KiB, half of what is produced
		writeTimeout          = 5 * time.Second
		// heapSlack is what kip's live heap may differ by once the stuck
		// watches ended; each held 4 MiB or more while it was open.
		heapSlack = 3 << 20
	)
	kip := startKipProc(t, "--stream-write-timeout="+writeTimeout.String())
	ns := createNamespace(t)
	user := harness.UniqueName("unread")
	grant(t, ns, userSubject(user), configMapRules...)
	grantNamespaceGet(t, user)
	cert := rawUserCert(t, user)
	normal := rawClient(t, rawHTTP2, cert)
	watchPath := "/api/v1/namespaces/" + ns + "/configmaps?watch=true"
	reader := startReadingWatch(t, rawClient(t, rawHTTP2, cert), kip.URL+watchPath)
	baseHeap := kip.liveHeap(t)

	stuck := openUnreadWatch(t, kip.URL, watchPath, cert)
	defer func() { _ = stuck.Close() }()
	stuckH2 := openUnreadWatchH2(t, rawClient(t, rawHTTP2, cert), kip.URL+watchPath)
	defer func() { _ = stuckH2.Close() }()

	baseRSS := kip.rssKiB(t)
	sampler := procstat.StartSampler(kip.Pid(), 100*time.Millisecond)
	produced := updateConfigMaps(t, ns, objects, rounds, size)
	harness.Eventually(t, time.Minute, func() error { return reader.sawAtLeast(produced * 9 / 10) })
	if err := responsive(normal, kip.URL+"/api/v1/namespaces/default"); err != nil {
		t.Fatalf("with watches that are never read: %v", err)
	}
	peakRSS := max(int64(baseRSS), sampler.Stop()>>10)
	t.Logf("produced %.1f MiB of ConfigMap updates; a reading watch through the same kip received %.1f MiB; "+
		"kip's RSS: %d KiB before, peak %d KiB (growth %d KiB, bound %d KiB)",
		float64(produced)/(1<<20), float64(reader.bytes.Load())/(1<<20),
		baseRSS, peakRSS, peakRSS-int64(baseRSS), growthBound)
	if growth := peakRSS - int64(baseRSS); growth > growthBound {
		t.Errorf("kip's RSS grew by %d KiB while %d MiB of events went to watches that are never read: it holds what it cannot send", growth, produced>>20)
	}

	withStuckHeap := kip.liveHeap(t)
	endedEarly := scrape(t, kip.ProbeURL).Sample("kip_longrunning_ended_total", map[string]string{"reason": "write-deadline"})
	t.Logf("kip's live heap: %d KiB before the stuck watches opened, %d KiB once the events were read (%v of them ended by then)",
		baseHeap>>10, withStuckHeap>>10, endedEarly)

	// Both stuck watches stalled while the events were produced; each is
	// ended writeTimeout after its write stalled. The bound is generous.
	harness.Eventually(t, writeTimeout+time.Minute, func() error {
		m := scrape(t, kip.ProbeURL)
		ended := m.Sample("kip_longrunning_ended_total", map[string]string{"reason": "write-deadline"})
		open := m.Sample("kip_longrunning_requests", map[string]string{"kind": "watch"})
		if ended != 2 || open != 1 {
			return fmt.Errorf("kip ended %v watches at their write deadline and has %v open; want 2 ended and the reading one open", ended, open)
		}
		return nil
	})
	if err := closedByKip(stuck); err != nil {
		t.Errorf("the stuck HTTP/1.1 watch: %v", err)
	}
	afterHeap := kip.liveHeap(t)
	t.Logf("kip's live heap: %d KiB after kip ended the stuck watches", afterHeap>>10)
	if afterHeap > baseHeap+heapSlack {
		t.Errorf("kip's live heap is %d KiB after it ended the stuck watches, %d KiB before they opened: it still holds their buffers", afterHeap>>10, baseHeap>>10)
	}
	if err := reader.sawAtLeast(produced * 9 / 10); err != nil || reader.ended.Load() {
		t.Errorf("the reading watch ended with the stuck ones (%v)", err)
	}
}

// closedByKip reads what conn still holds and reports an error unless kip
// has closed it: reads end, rather than waiting for more.
func closedByKip(conn net.Conn) error {
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, conn)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open: read %d bytes, then nothing for 30 s", n)
	}
	return nil
}

// openUnreadWatchH2 starts a watch over HTTP/2 with client, on a
// connection of its own, and never reads its body: once the stream's flow
// control window is full, kip's writes to it wait.
func openUnreadWatchH2(t *testing.T, client *http.Client, url string) io.Closer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: client.Transport}).Do(req) //nolint:bodyclose // the caller closes it
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		_ = resp.Body.Close()
		t.Fatalf("the HTTP/2 watch got %s %s", resp.Proto, resp.Status)
	}
	return resp.Body
}

// liveHeap is kip's heap in use after garbage collection, from its
// /debug/pprof/heap (which collects first when asked with gc=1). It asks
// twice: what a collection finds in a sync.Pool survives it once.
func (k *kipProc) liveHeap(t *testing.T) int64 {
	t.Helper()
	if resp, err := http.Get(k.ProbeURL + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	resp, err := http.Get(k.ProbeURL + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no HeapAlloc in kip's heap profile: %.200s", body)
	return 0
}

// openUnreadWatch starts a watch over HTTP/1.1 on a connection of its own,
// reads the answer's header to see that it is a 200, and from then on reads
// nothing.
func openUnreadWatch(t *testing.T, kipURL, path string, cert *tls.Certificate) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(kipURL, "https://")
	conn, err := tls.Dial("tcp", addr, kipTLSConfig(cert, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nAccept: application/json\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// One byte at a time, so that nothing past the header is read.
	var header strings.Builder
	b := make([]byte, 1)
	for !strings.HasSuffix(header.String(), "\r\n\r\n") {
		if header.Len() > 16<<10 {
			t.Fatalf("no end of the watch's answer header: %q", header.String())
		}
		if _, err := conn.Read(b); err != nil {
			t.Fatalf("reading the watch's answer header: %v", err)
		}
		header.WriteByte(b[0])
	}
	if !strings.HasPrefix(header.String(), "HTTP/1.1 200 ") {
		t.Fatalf("the watch was refused: %s", header.String())
	}
	return conn
}

// readingWatch is a watch whose events are read as they come.
type readingWatch struct {
	bytes  atomic.Int64
	events atomic.Int64
	// ended is set once its stream ended, for whatever reason.
	ended atomic.Bool
}

// sawAtLeast reports an error until the watch has received n bytes.
func (w *readingWatch) sawAtLeast(n int64) error {
	if got := w.bytes.Load(); got < n {
		return fmt.Errorf("the reading watch received %d bytes in %d events, want at least %d", got, w.events.Load(), n)
	}
	return nil
}

func startReadingWatch(t *testing.T, client *http.Client, url string) *readingWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	// The client's 30 s limit would cut a watch off.
	resp, err := (&http.Client{Transport: client.Transport}).Do(req) //nolint:bodyclose // the reading watch closes it when it ends
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		t.Fatalf("the reading watch was refused: %s: %s", resp.Status, body)
	}
	w := &readingWatch{}
	go func() {
		defer func() { _ = resp.Body.Close() }()
		defer w.ended.Store(true)
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := r.ReadSlice('\n')
			w.bytes.Add(int64(len(line)))
			if err == nil {
				w.events.Add(1)
			} else if !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}()
	return w
}

// updateConfigMaps creates objects ConfigMaps of about size bytes and
// rewrites each rounds-1 more times with new content, and returns how many
// bytes of data the watch events carry.
func updateConfigMaps(t *testing.T, ns string, objects, rounds, size int) int64 {
	t.Helper()
	admin := adminClient(t)
	ctx := context.Background()
	var produced int64
	for round := range rounds {
		value := strings.Repeat(string(rune('a'+round%26)), size)
		for i := range objects {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%02d", i)}, Data: map[string]string{"v": value}}
			var err error
			if round == 0 {
				_, err = admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			} else {
				_, err = admin.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			produced += int64(size)
		}
	}
	return produced
}

// idleConnections is how many idle TLS connections testIdleTLS holds open.
const idleConnections = 5000

// testIdleTLS opens 5,000 TLS connections to kip with a client
// certificate, each sending the HTTP/2 preface and its settings, as
// kubectl does, and then nothing. kip must serve a normal GET while they
// are open, and its RSS must stay far below 1 GiB; the figures before, with
// them open and after they close are reported.
func testIdleTLS(t *testing.T) {
	const rssBound = 1 << 20 // KiB
	kip := startKipProc(t)
	cert, normal := namespaceReader(t, "idle")
	url := kip.URL + "/api/v1/namespaces/default"
	if err := responsive(normal, url); err != nil {
		t.Fatal(err)
	}
	normal.CloseIdleConnections()
	baseFDs, _ := kip.settledUsage(t)
	baseRSS := kip.rssKiB(t)

	conns := openIdleConnections(t, strings.TrimPrefix(kip.URL, "https://"), kipTLSConfig(cert, "h2"), idleConnections)
	openFDs, openRSS := kip.fds(t), kip.rssKiB(t)
	servedErr := responsive(normal, url)
	for _, c := range conns {
		_ = c.Close()
	}
	normal.CloseIdleConnections()
	var endFDs int
	harness.Eventually(t, time.Minute, func() error {
		if endFDs = kip.fds(t); endFDs > baseFDs+fdSlack {
			return fmt.Errorf("kip holds %d file descriptors after the idle connections closed, %d before", endFDs, baseFDs)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	endRSS := kip.rssKiB(t)

	t.Logf("kip with %d idle TLS connections: %d file descriptors (%d before, %d after closing); RSS %d KiB before, %d KiB with them open, %d KiB after closing; %.1f KiB per connection",
		len(conns), openFDs, baseFDs, endFDs, baseRSS, openRSS, endRSS, float64(openRSS-baseRSS)/float64(len(conns)))
	if servedErr != nil {
		t.Errorf("with %d idle connections open: %v", len(conns), servedErr)
	}
	if openFDs < baseFDs+idleConnections {
		t.Errorf("kip held %d file descriptors with %d connections open, %d before: they did not all stay open", openFDs, idleConnections, baseFDs)
	}
	if openRSS > rssBound {
		t.Errorf("kip's RSS is %d KiB with %d idle connections, bound %d KiB", openRSS, idleConnections, rssBound)
	}
}

// http2Preface is what an HTTP/2 client sends first: the connection
// preface and an empty SETTINGS frame.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")

// openIdleConnections opens n TLS connections to addr with cfg, 32 at a
// time, sends the HTTP/2 preface on each and returns them open.
func openIdleConnections(t *testing.T, addr string, cfg *tls.Config, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, cfg)
				if err == nil {
					_, err = conn.Write(http2Preface)
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					continue
				}
				conns[i] = conn
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}
