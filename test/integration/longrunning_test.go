package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// userTLS returns a TLS configuration that trusts kip and presents a
// client certificate for user, signed by the cluster's CA.
func userTLS(t *testing.T, user string, groups ...string) *tls.Config {
	t.Helper()
	cfg, err := rest.TLSConfigFor(stack.UserConfigFor(user, groups...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func kipWebSocketURL(path string) string {
	return "wss" + strings.TrimPrefix(stack.KipURL, "https") + path
}

// watchEvent is one frame of a WebSocket watch.
type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	} `json:"object"`
}

// TestWebSocketWatch proves a watch upgraded to a WebSocket passes through
// kip and delivers ADDED and DELETED events, authenticated either by client
// certificate or by the bearer-token subprotocol, which kip removes before
// forwarding.
func TestWebSocketWatch(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("wswatcher")
	grant(t, ns, userSubject(user), configMapRules...)
	token := serviceAccountToken(t, ns, "wsrobot", configMapRules...)

	for _, tc := range []struct {
		name      string
		tls       *tls.Config
		protocols []string
	}{
		{"client certificate", userTLS(t, user), nil},
		{"bearer subprotocol", &tls.Config{RootCAs: kipRoots(t)}, []string{
			"base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(token)),
			"binary.k8s.io",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := websocket.Dialer{TLSClientConfig: tc.tls, Subprotocols: tc.protocols, HandshakeTimeout: 30 * time.Second}
			header := http.Header{"Origin": {stack.KipURL}}
			conn, resp, err := dialer.Dial(kipWebSocketURL("/api/v1/namespaces/"+ns+"/configmaps?watch=true"), header) //nolint:bodyclose // gorilla/websocket: the response body "does not need to be closed by the application"
			if err != nil {
				t.Fatalf("dial: %v (response %v)", err, resp)
			}
			defer func() { _ = conn.Close() }()
			if tc.protocols != nil && resp.Header.Get("Sec-WebSocket-Protocol") != "binary.k8s.io" {
				t.Errorf("negotiated subprotocol %q, want binary.k8s.io (the bearer entry must not reach the upstream)", resp.Header.Get("Sec-WebSocket-Protocol"))
			}

			ctx := context.Background()
			name := harness.UniqueName("ws")
			admin := adminClient(t)
			if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitForWSEvent(t, conn, "ADDED", name)
			if err := admin.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitForWSEvent(t, conn, "DELETED", name)
		})
	}
}

func waitForWSEvent(t *testing.T, conn *websocket.Conn, eventType, name string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s %s: %v", eventType, name, err)
		}
		var ev watchEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("decoding %q: %v", data, err)
		}
		if ev.Type == eventType && ev.Object.Metadata.Name == name {
			return
		}
	}
}

// TestWebSocketBearerSubprotocolRefusals checks the malformed forms that
// kube-apiserver itself refuses.
func TestWebSocketBearerSubprotocolRefusals(t *testing.T) {
	ns := createNamespace(t)
	token := serviceAccountToken(t, ns, "wsrefused", configMapRules...)
	enc := "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(token))
	for _, tc := range []struct {
		name      string
		protocols []string
	}{
		{"token only", []string{enc}},
		{"two tokens", []string{enc, enc, "binary.k8s.io"}},
		{"bad encoding", []string{"base64url.bearer.authorization.k8s.io.!!notbase64!!", "binary.k8s.io"}},
		{"unknown token", []string{"base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte("not-a-token")), "binary.k8s.io"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: kipRoots(t)}, Subprotocols: tc.protocols, HandshakeTimeout: 30 * time.Second}
			conn, resp, err := dialer.Dial(kipWebSocketURL("/api/v1/namespaces/"+ns+"/configmaps?watch=true"), http.Header{"Origin": {stack.KipURL}}) //nolint:bodyclose // gorilla/websocket: the response body "does not need to be closed by the application"
			if err == nil {
				_ = conn.Close()
				t.Fatal("the upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want 401, got %v (%v)", resp, err)
			}
		})
	}
}

func kipRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(stack.KipCAPEM) {
		t.Fatal("kip's CA does not parse")
	}
	return pool
}

// serviceAccountToken creates a ServiceAccount in ns allowed rules and
// returns a token for it.
func serviceAccountToken(t *testing.T, ns, name string, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	admin := adminClient(t)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grant(t, ns, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}, rules...)
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestManyWatchesOnOneHTTP2Connection opens 500 watches multiplexed on a
// single HTTP/2 connection to kip and checks that every one of them sees
// the same change.
func TestManyWatchesOnOneHTTP2Connection(t *testing.T) {
	const watchers = 500
	ns := createNamespace(t)
	user := harness.UniqueName("fanout")
	grant(t, ns, userSubject(user), configMapRules...)

	var dials atomic.Int32
	tlsConfig := userTLS(t, user)
	tlsConfig.NextProtos = []string{"h2"}
	// x/net v0.60 (which minio-go needs) deprecates its http2.Transport
	// for net/http's; this one still pins every watch to one connection.
	//nolint:staticcheck // see above
	transport := &http2.Transport{
		TLSClientConfig:            tlsConfig,
		StrictMaxConcurrentStreams: true,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			dials.Add(1)
			return (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
		},
	}
	defer transport.CloseIdleConnections() //nolint:staticcheck // see above
	client := &http.Client{Transport: transport}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := harness.UniqueName("fanout")
	var opened, saw sync.WaitGroup
	var seen atomic.Int32
	errs := make(chan error, watchers)
	for range watchers {
		opened.Add(1)
		saw.Add(1)
		go func() {
			defer saw.Done()
			errs <- watchFor(ctx, client, ns, name, opened.Done, &seen)
		}()
	}
	opened.Wait()
	if _, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	saw.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := seen.Load(); n != watchers {
		t.Fatalf("%d of %d watchers saw the event", n, watchers)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the watches used %d connections, want 1", n)
	}
}

// watchFor opens one watch, calls opened once the response headers are in,
// and returns when it has seen name. The upstream's priority and fairness
// may answer a burst of watch starts with 429; like client-go, watchFor
// then retries after the time the upstream asked for.
func watchFor(ctx context.Context, client *http.Client, ns, name string, opened func(), seen *atomic.Int32) error {
	once := sync.OnceFunc(opened)
	defer once()
	resp, err := openWatch(ctx, client, ns)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.ProtoMajor != 2 {
		return fmt.Errorf("watch over %s, want HTTP/2", resp.Proto)
	}
	once()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"name":"`+name+`"`) {
			seen.Add(1)
			return nil
		}
	}
	return fmt.Errorf("watch ended before the event: %v", sc.Err())
}

func openWatch(ctx context.Context, client *http.Client, ns string) (*http.Response, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, stack.KipURL+"/api/v1/namespaces/"+ns+"/configmaps?watch=true", nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			return nil, fmt.Errorf("watch: %s: %s", resp.Status, body)
		}
		wait := time.Second
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("watch still throttled: %s", body)
		case <-time.After(wait):
		}
	}
}

// TestLargeListStreams lists more than 50 MB through kip: the bytes are
// identical to what the API server sends directly, and kip's heap grows
// far less than the response, because it streams instead of buffering.
func TestLargeListStreams(t *testing.T) {
	const objects, objectSize = 64, 800 << 10 // ≈ 51 MB of data
	ns := createNamespace(t)
	user := harness.UniqueName("lister")
	grant(t, ns, userSubject(user), configMapRules...)
	createBigConfigMaps(t, ns, objects, objectSize)

	path, directSum, directSize := directSnapshot(t, ns)

	kipClient, err := rest.HTTPClientFor(stack.UserConfigFor(user))
	if err != nil {
		t.Fatal(err)
	}
	var kipSum [32]byte
	var kipSize int64
	growth := peakHeapGrowth(func() { kipSum, kipSize = hashGet(t, kipClient, stack.KipURL+path) })

	if directSize < 50<<20 {
		t.Fatalf("the list is only %d bytes, want at least 50 MiB", directSize)
	}
	if kipSum != directSum || kipSize != directSize {
		t.Fatalf("through kip: %d bytes %x; direct: %d bytes %x", kipSize, kipSum, directSize, directSum)
	}
	t.Logf("LIST of %.1f MiB: peak heap growth of the test process (kip and client) %.1f MiB (%.1f%% of the response)",
		float64(kipSize)/(1<<20), float64(growth)/(1<<20), 100*float64(growth)/float64(kipSize))
	if growth > uint64(kipSize)/4 {
		t.Fatalf("heap grew by %d bytes for a %d-byte response: kip is buffering", growth, kipSize)
	}
}

// directSnapshot returns the path of a LIST of ns's ConfigMaps pinned to
// one resourceVersion, so that every answer to it comes from the same
// snapshot and can be compared byte for byte, and the digest and size of
// that answer straight from kube-apiserver.
func directSnapshot(t *testing.T, ns string) (path string, sum [32]byte, size int64) {
	t.Helper()
	list, err := adminClient(t).CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	path = "/api/v1/namespaces/" + ns + "/configmaps?resourceVersion=" + list.ResourceVersion + "&resourceVersionMatch=Exact"
	direct, err := rest.HTTPClientFor(stack.Cluster.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	sum, size = hashGet(t, direct, stack.Cluster.URL+path)
	return path, sum, size
}

func createBigConfigMaps(t *testing.T, ns string, n, size int) {
	t.Helper()
	admin := adminClient(t)
	value := strings.Repeat("k", size)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%03d", i)}, Data: map[string]string{"v": value}}
			_, err := admin.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// hashGet streams url's body into a hash, holding none of it in memory.
func hashGet(t *testing.T, client *http.Client, url string) (sum [32]byte, size int64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	h := sha256.New()
	size, err = io.Copy(h, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, size
}

// peakHeapGrowth runs f and returns how far the live heap rose above where
// it started. A low GC target keeps garbage from passing for growth.
func peakHeapGrowth(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var s runtime.MemStats
				runtime.ReadMemStats(&s)
				peak = max(peak, s.HeapAlloc)
			}
		}
	}()
	f()
	close(done)
	<-sampled
	return peak - base
}
