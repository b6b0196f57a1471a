package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/recording"
)

// fakeRecorder collects what the proxy hands the recordings it opens.
type fakeRecorder struct {
	mu        sync.Mutex
	fail      error
	notReady  error
	opened    int
	stdout    strings.Builder
	summary   string // a port-forward's
	malformed []string
	closes    int
	closed    chan struct{}
}

func (f *fakeRecorder) Open(*http.Request) (Recording, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened++
	if f.fail != nil {
		return nil, f.fail
	}
	return f, nil
}

func (f *fakeRecorder) Ready(context.Context) error { return f.notReady }

func (f *fakeRecorder) Event(e recording.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch e.Stream {
	case recording.StreamStdout:
		f.stdout.Write(e.Data)
	case recording.StreamPortForward:
		f.summary += string(e.Data)
	}
}

func (f *fakeRecorder) Malformed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.malformed = append(f.malformed, err.Error())
}

func (f *fakeRecorder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	close(f.closed)
	return nil
}

// wsStdout is a server's WebSocket frame on the v5 channel protocol:
// unmasked, binary, channel 1 (stdout), then the data.
func wsStdout(data string) string {
	return string([]byte{0x82, byte(1 + len(data)), 1}) + data
}

// TestProxyRecordsSessions checks which upgraded sessions are recorded,
// that the relay is the same either way, and that every opened recording
// is closed exactly once when the session ends.
func TestProxyRecordsSessions(t *testing.T) {
	const said = "hi from the container"
	// The fake upstream switches to what the client asked for, with
	// ?protocol= as its WebSocket subprotocol, says one stdout frame
	// and hangs up.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("refuse") != "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n", r.Header.Get("Upgrade"))
		if p := r.URL.Query().Get("protocol"); p != "" {
			_, _ = fmt.Fprintf(rw, "Sec-WebSocket-Protocol: %s\r\n", p)
		}
		_, _ = rw.WriteString("\r\n" + wsStdout(said))
		_ = rw.Flush()
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)

	tests := []struct {
		name        string
		subresource string
		upgrade     string
		query       string
		openErr     error
		wantOpened  bool
		wantStdout  string
		wantSummary string
		wantNote    string // in the recording's Malformed note
	}{
		{name: "WebSocket exec", subresource: "exec", upgrade: "websocket", query: "protocol=v5.channel.k8s.io",
			wantOpened: true, wantStdout: said},
		{name: "WebSocket attach", subresource: "attach", upgrade: "websocket", query: "protocol=v5.channel.k8s.io",
			wantOpened: true, wantStdout: said},
		// The frame is not SPDY: the parser says so, the relay goes on.
		{name: "SPDY exec", subresource: "exec", upgrade: "SPDY/3.1", wantOpened: true, wantNote: "spdy"},
		{name: "a WebSocket subprotocol that is no channel protocol", subresource: "exec", upgrade: "websocket",
			query: "protocol=chat", wantOpened: true, wantNote: `"chat" is not an exec or attach channel protocol`},
		// The upstream's frame is a WebSocket one, which SPDY refuses to
		// read; it is counted all the same, and never recorded.
		{name: "SPDY port-forward is counted, not recorded", subresource: "portforward", upgrade: "SPDY/3.1", wantOpened: true,
			wantSummary: fmt.Sprintf(`{"ports":[],"fromClient":0,"toClient":%d}`, len(wsStdout(said))), wantNote: "SPDY version"},
		{name: "port-forward tunnelled in WebSocket", subresource: "portforward", upgrade: "websocket",
			query: "protocol=SPDY/3.1%2Bportforward.k8s.io", wantOpened: true,
			wantSummary: fmt.Sprintf(`{"ports":[],"fromClient":0,"toClient":%d}`, len(wsStdout(said)))},
		{name: "port-forward over an unknown protocol is counted", subresource: "portforward", upgrade: "websocket",
			query: "protocol=chat", wantOpened: true,
			wantSummary: fmt.Sprintf(`{"ports":[],"fromClient":0,"toClient":%d}`, len(wsStdout(said))), wantNote: "neither SPDY"},
		{name: "a refused exec is not recorded", subresource: "exec", upgrade: "SPDY/3.1", query: "refuse=1"},
		{name: "a recording that cannot be opened leaves the session alone", subresource: "exec", upgrade: "websocket",
			query: "protocol=v5.channel.k8s.io", openErr: errors.New("disk full"), wantOpened: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecorder{fail: tt.openErr, closed: make(chan struct{})}
			p := newProxy(target, tr)
			WithRecorder(rec)(p)
			info := &request.RequestInfo{IsResourceRequest: true, Verb: "create", Resource: "pods",
				Subresource: tt.subresource, Namespace: "ns", Name: "pod"}
			conn, front := dialChain(t, p, info)
			if _, err := fmt.Fprintf(conn, "GET /api/v1/namespaces/ns/pods/pod/%s?%s HTTP/1.1\r\nHost: kip\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n",
				tt.subresource, tt.query, tt.upgrade); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close() // a 101's body is empty: the stream is br
			if res.StatusCode == http.StatusSwitchingProtocols {
				if got, _ := io.ReadAll(br); string(got) != wsStdout(said) {
					t.Errorf("the client read %q through kip, want the upstream's frame", got)
				}
			}
			// The relay half-closes towards the client when the upstream
			// hangs up, and ends when the client does too.
			_ = conn.Close()
			if tt.wantOpened && tt.openErr == nil {
				select {
				case <-rec.closed:
				case <-time.After(10 * time.Second):
					t.Fatal("the recording was not closed when the session ended")
				}
			}
			front.Close() // waits for the handler, so nothing is still recording

			rec.mu.Lock()
			defer rec.mu.Unlock()
			if (rec.opened > 0) != tt.wantOpened {
				t.Fatalf("opened %d recordings, want one: %v", rec.opened, tt.wantOpened)
			}
			if want := tt.wantOpened && tt.openErr == nil; (rec.closes == 1) != want {
				t.Errorf("closed the recording %d times", rec.closes)
			}
			if rec.stdout.String() != tt.wantStdout {
				t.Errorf("recorded stdout %q, want %q", rec.stdout.String(), tt.wantStdout)
			}
			if rec.summary != tt.wantSummary {
				t.Errorf("port-forward summary %q, want %q", rec.summary, tt.wantSummary)
			}
			note := strings.Join(rec.malformed, "; ")
			if (tt.wantNote == "") != (note == "") || !strings.Contains(strings.ToLower(note), strings.ToLower(tt.wantNote)) {
				t.Errorf("recording notes %q, want one containing %q", note, tt.wantNote)
			}
		})
	}
}

// TestProxyRequiresRecording checks that with RequireRecording a session
// that cannot be recorded is refused with 503: before the upstream sees
// it when the recorder is not ready, and before the switch when its
// recording cannot be opened; and that nothing else is refused.
func TestProxyRequiresRecording(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, "{}")
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n" + wsStdout("hi"))
		_ = rw.Flush()
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	storageDown := errors.New("the recording directory has 0 KiB free")

	tests := []struct {
		name         string
		required     bool
		notReady     error
		openErr      error
		subresource  string // "" for a plain GET of the pod
		wantCode     int
		wantUpstream bool
	}{
		{name: "exec while storage is down", required: true, notReady: storageDown, subresource: "exec",
			wantCode: http.StatusServiceUnavailable},
		{name: "attach while storage is down", required: true, notReady: storageDown, subresource: "attach",
			wantCode: http.StatusServiceUnavailable},
		{name: "port-forward while storage is down", required: true, notReady: storageDown, subresource: "portforward",
			wantCode: http.StatusServiceUnavailable},
		{name: "a GET while storage is down", required: true, notReady: storageDown,
			wantCode: http.StatusOK, wantUpstream: true},
		{name: "exec with storage up", required: true, subresource: "exec",
			wantCode: http.StatusSwitchingProtocols, wantUpstream: true},
		{name: "exec whose recording cannot be opened", required: true, openErr: storageDown, subresource: "exec",
			wantCode: http.StatusServiceUnavailable, wantUpstream: true},
		{name: "not required: exec while storage is down runs", notReady: storageDown, subresource: "exec",
			wantCode: http.StatusSwitchingProtocols, wantUpstream: true},
		{name: "not required: exec whose recording cannot be opened runs", openErr: storageDown, subresource: "exec",
			wantCode: http.StatusSwitchingProtocols, wantUpstream: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			rec := &fakeRecorder{fail: tt.openErr, notReady: tt.notReady, closed: make(chan struct{})}
			p := newProxy(target, tr)
			WithRecorder(rec)(p)
			if tt.required {
				RequireRecording()(p)
			}
			info := &request.RequestInfo{IsResourceRequest: true, Verb: "create", Resource: "pods",
				Subresource: tt.subresource, Namespace: "ns", Name: "pod"}
			if tt.subresource == "" {
				info.Verb = "get"
			}
			conn, front := dialChain(t, p, info)
			reqLine := "GET /api/v1/namespaces/ns/pods/pod HTTP/1.1\r\nHost: kip\r\n\r\n"
			if tt.subresource != "" {
				reqLine = "GET /api/v1/namespaces/ns/pods/pod/" + tt.subresource +
					" HTTP/1.1\r\nHost: kip\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
			}
			if _, err := io.WriteString(conn, reqLine); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
			_ = res.Body.Close()
			_ = conn.Close()
			front.Close()
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, body, tt.wantCode)
			}
			if tt.wantCode == http.StatusServiceUnavailable {
				var status metav1.Status
				if json.Unmarshal(body, &status) != nil || status.Kind != "Status" || status.Code != http.StatusServiceUnavailable ||
					!strings.Contains(status.Message, "must record this session") {
					t.Errorf("a 503 without the Status that says why: %s", body)
				}
				if strings.Contains(string(body), "KiB free") {
					t.Errorf("the caller learned what failed in kip's storage: %s", body)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if (len(seen) > 0) != tt.wantUpstream {
				t.Errorf("the upstream saw %q, want a request: %v", seen, tt.wantUpstream)
			}
		})
	}
}

// dialChain serves p behind the chain as certUser, with info as the
// request's info, and returns a raw connection to it and the server, both
// closed when the test ends.
func dialChain(t *testing.T, p *Proxy, info *request.RequestInfo) (net.Conn, *httptest.Server) {
	t.Helper()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chainTo(p, certUser, false).ServeHTTP(w, r.WithContext(request.WithRequestInfo(r.Context(), info)))
	}))
	t.Cleanup(front.Close)
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	return conn, front
}
