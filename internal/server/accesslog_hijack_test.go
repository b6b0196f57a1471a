package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

// TestAccessLogKeepsHijackAndFlush is rule 6 for the access log's
// codeWriter (--access-log): behind it, an upgrade through a real
// httputil.ReverseProxy (as kip's proxy does it) still becomes a stream,
// a handler can still hijack the connection itself, and a watch-like
// response still reaches the client event by event. The access log
// records 101 for the upgrades and 200 for the stream.
func TestAccessLogKeepsHijackAndFlush(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(echoUpgrade))
	defer upstream.Close()
	target, err := url.Parse(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	reverseProxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}

	plain := func(h http.Handler) func(<-chan struct{}) http.Handler {
		return func(<-chan struct{}) http.Handler { return h }
	}
	tests := []struct {
		name string
		// handler is what the access log wraps; read is closed once the
		// client has read the first event.
		handler  func(read <-chan struct{}) http.Handler
		client   func(t *testing.T, conn net.Conn, read chan<- struct{})
		wantCode string
	}{
		{name: "upgrade through httputil.ReverseProxy", handler: plain(reverseProxy), client: upgradeAndEcho, wantCode: "code=101"},
		{name: "handler hijacks the connection itself", handler: plain(http.HandlerFunc(hijackItself)), client: upgradeAndEcho, wantCode: "code=101"},
		{name: "watch flushed through http.Flusher", handler: streamEvents(func(w http.ResponseWriter) error {
			f, ok := w.(http.Flusher)
			if !ok {
				return fmt.Errorf("%T is not an http.Flusher", w)
			}
			f.Flush()
			return nil
		}), client: readEvents, wantCode: "code=200"},
		{name: "watch flushed through http.ResponseController", handler: streamEvents(func(w http.ResponseWriter) error {
			return http.NewResponseController(w).Flush()
		}), client: readEvents, wantCode: "code=200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := captureAccessLog(t)
			read, served := make(chan struct{}), make(chan struct{})
			h := withAccessLog(tt.handler(read))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(served)
				h.ServeHTTP(w, r.WithContext(request.WithRequestInfo(r.Context(), &request.RequestInfo{Verb: "create"})))
			}))
			defer srv.Close()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // liveness only
			tt.client(t, conn, read)
			_ = conn.Close()
			select { // a hijacked connection is not waited for by srv.Close
			case <-served:
			case <-time.After(30 * time.Second):
				t.Fatal("the handler never returned")
			}
			klog.Flush()
			if !strings.Contains(logs.String(), `"Access"`) || !strings.Contains(logs.String(), tt.wantCode) {
				t.Errorf("the access log does not say %s:\n%s", tt.wantCode, logs)
			}
		})
	}
}

// echoUpgrade is an upstream that switches to a raw stream and echoes a
// line back.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "kip-test" {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	w.Header().Set("Connection", "Upgrade")
	w.Header().Set("Upgrade", "kip-test")
	w.WriteHeader(http.StatusSwitchingProtocols)
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	echoLine(rw)
}

// hijackItself answers 101 on the raw connection, without WriteHeader, as
// httputil.ReverseProxy does once the upstream switched protocols.
func hijackItself(w http.ResponseWriter, _ *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, fmt.Sprintf("%T is not an http.Hijacker", w), http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kip-test\r\n\r\n")
	_ = rw.Flush()
	echoLine(rw)
}

func echoLine(rw *bufio.ReadWriter) {
	line, err := rw.ReadString('\n')
	if err != nil {
		return
	}
	_, _ = rw.WriteString("echo " + line)
	_ = rw.Flush()
}

// upgradeAndEcho asks for an upgrade, expects 101, and checks that the
// connection is then a stream both ways.
func upgradeAndEcho(t *testing.T, conn net.Conn, _ chan<- struct{}) {
	t.Helper()
	if _, err := io.WriteString(conn, "GET /api/v1/namespaces/ns/pods/p/exec HTTP/1.1\r\nHost: kip\r\nConnection: Upgrade\r\nUpgrade: kip-test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("answer %s: %s, want 101", resp.Status, body)
	}
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Fatalf("stream answered %q, %v; want the echo", line, err)
	}
}

// streamEvents answers like a watch: one event, flushed with flush, then,
// only once the client has read it, a second. Without a working flush the
// first event would sit in a buffer and the client would wait for ever
// (until its deadline).
func streamEvents(flush func(http.ResponseWriter) error) func(<-chan struct{}) http.Handler {
	return func(read <-chan struct{}) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"type":"ADDED"}`+"\n")
			if err := flush(w); err != nil {
				_, _ = io.WriteString(w, err.Error()+"\n")
				return
			}
			select {
			case <-read:
				_, _ = io.WriteString(w, `{"type":"DELETED"}`+"\n")
			case <-time.After(30 * time.Second):
			}
		})
	}
}

// readEvents reads the first event as soon as it is flushed, then lets
// the handler send the second.
func readEvents(t *testing.T, conn net.Conn, read chan<- struct{}) {
	t.Helper()
	if _, err := io.WriteString(conn, "GET /api/v1/pods?watch=true HTTP/1.1\r\nHost: kip\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body := bufio.NewReader(resp.Body)
	first, err := body.ReadString('\n')
	if err != nil || first != `{"type":"ADDED"}`+"\n" {
		t.Fatalf("first event %q, %v", first, err)
	}
	close(read)
	if second, err := body.ReadString('\n'); err != nil || second != `{"type":"DELETED"}`+"\n" {
		t.Fatalf("second event %q, %v", second, err)
	}
}

// captureAccessLog sends klog's output to a buffer for the rest of the
// test.
func captureAccessLog(t *testing.T) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	klog.LogToStderr(false)
	klog.SetOutput(out)
	t.Cleanup(func() {
		klog.SetOutput(os.Stderr)
		klog.LogToStderr(true)
	})
	return out
}

// lockedBuffer is a bytes.Buffer that klog may write while a test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
