package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an upstream that remembers every request it was sent: the
// path, the identity headers and the request trailers.
type recorder struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (r *recorder) record(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, req)
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.seen...)
}

// TestProxyReturnsEveryRedirect has the upstream answer each redirect code
// to a plain request and to an upgrade (which takes kip's HTTP/1.1
// transport), pointing at a second server. kip must hand the redirect back
// as it is and never follow it: the second server would receive kip's
// credentials and impersonation headers, and for 307 and 308 the body.
// TestAdversarialRedirectIsReturned (test/integration) has kube-apiserver
// itself answer 301.
func TestProxyReturnsEveryRedirect(t *testing.T) {
	trap := &recorder{}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { trap.record(r) }))
	t.Cleanup(elsewhere.Close)

	upstreamSeen := &recorder{}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamSeen.record(r)
		_, _ = io.Copy(io.Discard, r.Body)
		var code int
		if _, err := fmt.Sscanf(r.URL.Query().Get("code"), "%d", &code); err != nil {
			code = http.StatusFound
		}
		http.Redirect(w, r, elsewhere.URL+"/stolen"+r.URL.Path, code)
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	front := httptest.NewServer(chainTo(newProxy(target, tr), certUser, false))
	t.Cleanup(front.Close)

	codes := []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
	for _, upgrade := range []bool{false, true} {
		for _, code := range codes {
			t.Run(fmt.Sprintf("%d upgrade=%v", code, upgrade), func(t *testing.T) {
				path := fmt.Sprintf("/api/v1/namespaces/ns/pods/p/exec/%d-%v", code, upgrade)
				res := sendRedirectable(t, front.Listener.Addr().String(), path+fmt.Sprintf("?code=%d", code), upgrade)
				defer func() { _ = res.Body.Close() }()
				if res.StatusCode != code {
					t.Fatalf("got %d, want the upstream's %d", res.StatusCode, code)
				}
				if loc := res.Header.Get("Location"); loc != elsewhere.URL+"/stolen"+path {
					t.Errorf("Location = %q, want the upstream's, unchanged", loc)
				}
			})
		}
	}
	if got := len(upstreamSeen.requests()); got != 2*len(codes) {
		t.Errorf("the upstream saw %d requests, want %d: one per case, no follow-up", got, 2*len(codes))
	}
	for _, r := range trap.requests() {
		t.Errorf("kip followed a redirect to %s, carrying Impersonate-User %q", r.URL.Path, r.Header.Get("Impersonate-User"))
	}
}

// sendRedirectable POSTs a small body to path on a raw connection to addr,
// as an upgrade request if upgrade, and returns the answer.
func sendRedirectable(t *testing.T, addr, path string, upgrade bool) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	head := "Content-Length: 2\r\n"
	if upgrade {
		head += "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
	}
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: kip\r\n%s\r\n{}", path, head); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res
}

// TestProxyDropsRequestTrailers sends credentials, impersonation and
// front-proxy headers as HTTP/1.1 request trailers. Go's server keeps
// trailers out of r.Header, so the chain never sees them. kip forwards none
// of their values: httputil.ReverseProxy clones the trailer map before the
// body is read, and the body fills only the caller's map. Sent directly,
// the same bytes do reach the upstream's r.Trailer (checked when this test
// was written); this test keeps kip from ever forwarding them. Rule 2 says
// nothing the client chose of these families reaches the upstream, even
// where kube-apiserver would not read it today.
func TestProxyDropsRequestTrailers(t *testing.T) {
	upstreamSeen := &recorder{}
	trailers := make(chan http.Header, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamSeen.record(r)
		_, _ = io.Copy(io.Discard, r.Body)
		trailers <- r.Trailer.Clone() // complete only once the body is read
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	front := httptest.NewServer(chainTo(newProxy(target, tr), certUser, false))
	t.Cleanup(front.Close)

	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, "POST /api/v1/namespaces HTTP/1.1\r\nHost: kip\r\n"+
		"Trailer: Authorization, Impersonate-User, X-Remote-User\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"2\r\n{}\r\n0\r\nAuthorization: Bearer stolen\r\nImpersonate-User: kip-admin\r\nX-Remote-User: kip-admin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want the upstream's 200", res.StatusCode)
	}
	got := <-trailers
	var leaked []string
	for name, values := range got {
		if len(values) > 0 {
			leaked = append(leaked, name+": "+strings.Join(values, ","))
		}
	}
	if len(leaked) > 0 {
		t.Errorf("request trailers reached the upstream beside kip's credentials: %q", leaked)
	}
	if n := len(upstreamSeen.requests()); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
}
