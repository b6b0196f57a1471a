package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/caller"
)

const peer = "192.0.2.10"

var testUpstream = &url.URL{Scheme: "https", Host: "upstream.test:6443"}

// recordingTransport stands in for the upstream: it keeps every request it
// is asked to send and answers 200.
type recordingTransport struct {
	mu   sync.Mutex
	sent []*http.Request
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.sent = append(rt.sent, r)
	rt.mu.Unlock()
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"kind":"Status"}`)),
		Request:    r,
	}, nil
}

func (rt *recordingTransport) requests() []*http.Request {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]*http.Request(nil), rt.sent...)
}

// asUser plays the authentication filter: it puts u into the request's
// context, as k8s.io/apiserver does after a successful authentication.
func asUser(u user.Info, next http.Handler) http.Handler {
	if u == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), u)))
	})
}

// chainTo is kip's handler chain from authentication on, as in
// internal/server: the original user is remembered, then kube's own
// impersonation filter (allowing everything here) swaps in the user the
// caller asked for. Without nested, the filter is left out so that
// Impersonate-* headers reach the proxy as if the chain had been bypassed.
func chainTo(p http.Handler, u user.Info, nested bool) http.Handler {
	h := p
	if nested {
		h = impersonation.WithImpersonation(h, authorizerfactory.NewAlwaysAllowAuthorizer(), scheme.Codecs)
	}
	h = caller.WithOriginalUser(h)
	return asUser(u, h)
}

// upstreamVerified runs token through caller.UpstreamVerified as the
// TokenReview authenticator would, and returns the user it yields.
func upstreamVerified(t *testing.T, token string, u *user.DefaultInfo) user.Info {
	t.Helper()
	review := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: u}, true, nil
	})
	resp, ok, err := caller.UpstreamVerified(review).AuthenticateToken(context.Background(), token)
	if err != nil || !ok {
		t.Fatalf("UpstreamVerified: ok=%v err=%v", ok, err)
	}
	return resp.User
}

func decodeStatus(t *testing.T, res *http.Response) metav1.Status {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var s metav1.Status
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatalf("decoding the Status body: %v", err)
	}
	if s.Kind != "Status" || s.APIVersion != "v1" || s.Status != metav1.StatusFailure || int(s.Code) != res.StatusCode {
		t.Errorf("got Status %+v for HTTP %d, want a v1 Status failure with the same code", s, res.StatusCode)
	}
	return s
}

func TestProxyUpstreamHeaders(t *testing.T) {
	serviceAccount := &user.DefaultInfo{
		Name:   "system:serviceaccount:ns:sa",
		UID:    "sa-uid",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ns", user.AllAuthenticated},
	}
	certIdentity := []string{
		"Impersonate-User", "alice",
		"Impersonate-Group", "devs",
		"Impersonate-Extra-Authentication.kubernetes.io%2Fcredential-id", "X509SHA256=ab12",
	}
	clean := []string{"Accept", "application/json", "User-Agent", "kubectl/v1.37.2"}

	tests := []struct {
		name       string
		user       user.Info // the authenticated user; nil for none
		passthru   string    // when set, user is made upstream-verified with this token
		nested     bool      // the chain includes kube's impersonation filter
		remoteAddr string    // defaults to peer:port
		header     http.Header
		// wantUpstream is exactly what the upstream receives; nil means it
		// must not be called at all.
		wantUpstream http.Header
		wantCode     int
		wantMessage  string
	}{
		{
			name:         "certificate user",
			user:         certUser,
			header:       header(clean...),
			wantUpstream: header(slices.Concat(clean, certIdentity, []string{"X-Forwarded-For", peer})...),
			wantCode:     http.StatusOK,
		},
		{
			name:   "nested impersonation records the original caller",
			user:   certUser,
			nested: true,
			header: header(slices.Concat(clean, []string{"Impersonate-User", "bob", "Impersonate-Group", "viewers"})...),
			wantUpstream: header(slices.Concat(clean, []string{
				"Impersonate-User", "bob",
				"Impersonate-Group", "viewers",
				"Impersonate-Extra-Original-user-info.kip.dev", `{"username":"alice","groups":["devs","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=ab12"]}}`,
				"X-Forwarded-For", peer,
			})...),
			wantCode: http.StatusOK,
		},
		{
			name: "spoofed identity and origin headers are dropped",
			user: certUser,
			header: header(slices.Concat(clean, []string{
				"X-Remote-User", "system:admin",
				"x-remote-group", "system:masters",
				"X-Remote-Extra-Scopes", "all",
				"X-Forwarded-For", "6.6.6.6",
				"X-Forwarded-Host", "evil.test",
				"X-Forwarded-Proto", "http",
				"Forwarded", "for=6.6.6.6",
				"X-Real-Ip", "6.6.6.6",
				"Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.c3RvbGVu, v5.channel.k8s.io",
			})...),
			wantUpstream: header(slices.Concat(clean, certIdentity, []string{
				"X-Forwarded-For", peer,
				"Sec-WebSocket-Protocol", "v5.channel.k8s.io",
			})...),
			wantCode: http.StatusOK,
		},
		{
			name:         "Connection naming kip's own headers cannot strip them (golang/go#50580)",
			user:         certUser,
			header:       header(slices.Concat(clean, []string{"Connection", "Impersonate-User, Authorization"})...),
			wantUpstream: header(slices.Concat(clean, certIdentity, []string{"X-Forwarded-For", peer})...),
			wantCode:     http.StatusOK,
		},
		{
			name: "Connection naming every identity header and X-Forwarded-For",
			user: certUser,
			header: header(slices.Concat(clean, []string{
				"Connection", "keep-alive, Impersonate-Group, Impersonate-Extra-Authentication.kubernetes.io%2Fcredential-id",
				"Connection", "X-Forwarded-For, Accept",
			})...),
			wantUpstream: header(slices.Concat([]string{"User-Agent", "kubectl/v1.37.2"}, certIdentity, []string{"X-Forwarded-For", peer})...),
			wantCode:     http.StatusOK,
		},
		{
			name:         "hop-by-hop headers are not forwarded",
			user:         certUser,
			header:       header(slices.Concat(clean, []string{"Keep-Alive", "timeout=5", "Proxy-Authorization", "Basic eDp5", "Proxy-Connection", "keep-alive", "Te", "gzip"})...),
			wantUpstream: header(slices.Concat(clean, certIdentity, []string{"X-Forwarded-For", peer})...),
			wantCode:     http.StatusOK,
		},
		{
			name:         "a peer without a port gets no X-Forwarded-For, not the caller's",
			user:         certUser,
			remoteAddr:   "@",
			header:       header(slices.Concat(clean, []string{"X-Forwarded-For", "6.6.6.6"})...),
			wantUpstream: header(slices.Concat(clean, certIdentity)...),
			wantCode:     http.StatusOK,
		},
		{
			name:         "upstream-verified token is passed through instead of impersonated",
			user:         serviceAccount,
			passthru:     "sa-token",
			header:       header(clean...),
			wantUpstream: header(slices.Concat(clean, []string{"Authorization", "Bearer sa-token", "X-Forwarded-For", peer})...),
			wantCode:     http.StatusOK,
		},
		{
			name:     "upstream-verified token with nested impersonation",
			user:     serviceAccount,
			passthru: "sa-token",
			nested:   true,
			header:   header(slices.Concat(clean, []string{"Impersonate-User", "bob"})...),
			wantUpstream: header(slices.Concat(clean, []string{
				"Authorization", "Bearer sa-token",
				"Impersonate-User", "bob",
				"X-Forwarded-For", peer,
			})...),
			wantCode: http.StatusOK,
		},
		{
			name:        "Authorization reaching the proxy fails closed",
			user:        certUser,
			header:      header(slices.Concat(clean, []string{"Authorization", "Bearer stolen-token"})...),
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"Authorization" reached the proxy step`,
		},
		{
			name:        "Authorization fails closed for passthrough users too",
			user:        serviceAccount,
			passthru:    "sa-token",
			header:      header(slices.Concat(clean, []string{"Authorization", "Bearer stolen-token"})...),
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"Authorization" reached the proxy step`,
		},
		{
			name:        "non-canonical authorization fails closed",
			user:        certUser,
			header:      http.Header{"authorization": {"Bearer stolen-token"}},
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"authorization" reached the proxy step`,
		},
		{
			name:        "Impersonate-User in upper case fails closed",
			user:        certUser,
			header:      header("IMPERSONATE-USER", "system:admin"),
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"Impersonate-User" reached the proxy step`,
		},
		{
			name:        "Impersonate-Extra-* fails closed",
			user:        certUser,
			header:      header("impersonate-extra-foo", "bar"),
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"Impersonate-Extra-Foo" reached the proxy step`,
		},
		{
			name:        "non-canonical impersonate-group fails closed",
			user:        certUser,
			header:      http.Header{"impersonate-group": {"system:masters"}},
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"impersonate-group" reached the proxy step`,
		},
		{
			name:        "Impersonate-User named in Connection still fails closed",
			user:        certUser,
			header:      header("Connection", "Impersonate-User", "Impersonate-User", "system:admin"),
			wantCode:    http.StatusInternalServerError,
			wantMessage: `"Impersonate-User" reached the proxy step`,
		},
		{
			name:        "no authenticated user",
			header:      header(clean...),
			wantCode:    http.StatusInternalServerError,
			wantMessage: "no authenticated user reached the proxy step",
		},
		{
			name:        "user without a name",
			user:        &user.DefaultInfo{Groups: []string{"system:masters"}},
			header:      header(clean...),
			wantCode:    http.StatusInternalServerError,
			wantMessage: "without a name",
		},
		{
			name:        "nested impersonation forging the original-user extra",
			user:        certUser,
			nested:      true,
			header:      header("Impersonate-User", "bob", "Impersonate-Extra-Original-User-Info.kip.dev", `{"username":"mallory"}`),
			wantCode:    http.StatusInternalServerError,
			wantMessage: "reserved extra",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.user
			if tt.passthru != "" {
				u = upstreamVerified(t, tt.passthru, tt.user.(*user.DefaultInfo))
			}
			rt := &recordingTransport{}
			h := chainTo(newProxy(testUpstream, rt), u, tt.nested)

			req := httptest.NewRequest(http.MethodGet, "https://kip.test/api/v1/namespaces/default/pods?watch=false", nil)
			req.RemoteAddr = peer + ":54321"
			if tt.remoteAddr != "" {
				req.RemoteAddr = tt.remoteAddr
			}
			req.Header = tt.header.Clone()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()

			if res.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d; body %s", res.StatusCode, tt.wantCode, rec.Body)
			}
			sent := rt.requests()
			if tt.wantUpstream == nil {
				if len(sent) != 0 {
					t.Errorf("the upstream was called with %v, want it never called", sent[0].Header)
				}
				s := decodeStatus(t, res)
				if !strings.Contains(s.Message, tt.wantMessage) {
					t.Errorf("message = %q, want it to contain %q", s.Message, tt.wantMessage)
				}
				if strings.Contains(s.Message, "stolen-token") || strings.Contains(s.Message, "system:admin") {
					t.Errorf("message %q repeats a header value", s.Message)
				}
				return
			}
			if len(sent) != 1 {
				t.Fatalf("the upstream got %d requests, want 1", len(sent))
			}
			out := sent[0]
			if !reflect.DeepEqual(out.Header, tt.wantUpstream) {
				t.Errorf("upstream headers:\n%v\nwant\n%v", out.Header, tt.wantUpstream)
			}
			if got, want := out.URL.String(), "https://upstream.test:6443/api/v1/namespaces/default/pods?watch=false"; got != want {
				t.Errorf("upstream URL = %s, want %s", got, want)
			}
			if out.Host != "" {
				t.Errorf("upstream Host = %q, want the target's", out.Host)
			}
			for name, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Cache-Control":          "no-cache, private",
			} {
				if got := res.Header.Get(name); got != want {
					t.Errorf("response %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestProxyUpstreamFailures(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}: // a test is waiting for the request to arrive
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(drop.Close)
	down := closedPort(t)

	tests := []struct {
		name     string
		target   string
		ctx      func(t *testing.T) context.Context
		wantCode int // 0: nothing may be written
		wantMsg  string
	}{
		{
			name:     "upstream down",
			target:   "http://" + down,
			wantCode: http.StatusServiceUnavailable,
			wantMsg:  "the upstream API server " + down + " is unavailable",
		},
		{
			name:   "upstream hangs past the request deadline",
			target: hang.URL,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantCode: http.StatusGatewayTimeout,
			wantMsg:  "the upstream API server " + strings.TrimPrefix(hang.URL, "http://") + " did not answer in time",
		},
		{
			name:   "caller goes away while the upstream works",
			target: hang.URL,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				go func() {
					<-arrived
					cancel()
				}()
				return ctx
			},
		},
		{
			name:     "upstream drops the connection",
			target:   drop.URL,
			wantCode: http.StatusBadGateway,
			wantMsg:  "bad gateway: the upstream API server " + strings.TrimPrefix(drop.URL, "http://"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := url.Parse(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			h := chainTo(newProxy(target, tr), certUser, false)
			req := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
			if tt.ctx != nil {
				req = req.WithContext(tt.ctx(t))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if tt.wantCode == 0 {
				if rec.Body.Len() != 0 || res.Header.Get("Content-Type") != "" {
					t.Errorf("answered a caller that went away: %d %v %s", res.StatusCode, res.Header, rec.Body)
				}
				return
			}
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", res.StatusCode, tt.wantCode, rec.Body)
			}
			if s := decodeStatus(t, res); !strings.Contains(s.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", s.Message, tt.wantMsg)
			}
		})
	}
}

func TestProxyDoesNotFollowRedirects(t *testing.T) {
	var followed sync.Map
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/pods" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		followed.Store(r.URL.Path, true)
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	front := httptest.NewServer(chainTo(newProxy(target, tr), certUser, false))
	t.Cleanup(front.Close)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(front.URL + "/api/v1/pods")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/elsewhere" {
		t.Errorf("got %d Location %q, want 302 to /elsewhere", res.StatusCode, res.Header.Get("Location"))
	}
	followed.Range(func(path, _ any) bool {
		t.Errorf("the proxy followed the redirect to %s", path)
		return true
	})
}

func TestProxyFlushesImmediately(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"type":"ADDED"}`+"\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, `{"type":"DELETED"}`+"\n")
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	front := httptest.NewServer(chainTo(newProxy(target, tr), certUser, false))
	t.Cleanup(front.Close)

	// The deadline only keeps a broken proxy from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/api/v1/pods?watch=true", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body := bufio.NewReader(res.Body)
	// The upstream is still blocked: this line can only arrive if the proxy
	// flushed it at once.
	first, err := body.ReadString('\n')
	if err != nil || first != `{"type":"ADDED"}`+"\n" {
		t.Fatalf("first event = %q, %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != `{"type":"DELETED"}`+"\n" {
		t.Errorf("rest = %q, %v", rest, err)
	}
}

// TestProxyUpgrades checks that only a 101 answer turns a connection into a
// raw stream (CVE-2018-1002105): after a refused upgrade, the next request on
// the same connection is still a request to kip, not bytes spliced to the
// upstream under kip's credentials.
func TestProxyUpgrades(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" as "+r.Header.Get("Impersonate-User"))
		mu.Unlock()
		if r.Header.Get("Upgrade") == "" || r.URL.Path == "/refuse" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":403}`)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", r.Header.Get("Upgrade"))
		_ = rw.Flush()
		line, _ := rw.ReadString('\n')
		_, _ = rw.WriteString("echo " + line)
		_ = rw.Flush()
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	front := httptest.NewServer(chainTo(newProxy(target, tr), certUser, false))
	t.Cleanup(front.Close)

	tests := []struct {
		name     string
		path     string
		wantCode int
	}{
		{name: "accepted upgrade becomes a stream", path: "/exec", wantCode: http.StatusSwitchingProtocols},
		{name: "refused upgrade is never spliced", path: "/refuse", wantCode: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: kip\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n", tt.path); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantCode)
			}
			if tt.wantCode == http.StatusSwitchingProtocols {
				if _, err := io.WriteString(conn, "hello\n"); err != nil {
					t.Fatal(err)
				}
				if got, err := br.ReadString('\n'); got != "echo hello\n" {
					t.Errorf("read %q, %v through the stream, want the echo", got, err)
				}
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if _, err := io.WriteString(conn, "GET /smuggled HTTP/1.1\r\nHost: kip\r\nImpersonate-User: system:admin\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusInternalServerError {
				t.Errorf("the second request got %d, want kip's own 500", res.StatusCode)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/exec as alice", "/refuse as alice"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("the upstream saw %q, want %q", seen, want)
	}
}

// namedTransport records which of the four transports was chosen.
type namedTransport struct {
	name string
	got  *[]string
	rec  *recordingTransport
}

func (n namedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	*n.got = append(*n.got, n.name)
	return n.rec.RoundTrip(r)
}

func TestTransportsRoute(t *testing.T) {
	serviceAccount := &user.DefaultInfo{Name: "system:serviceaccount:ns:sa", Groups: []string{user.AllAuthenticated}}
	tests := []struct {
		name          string
		passthru      bool
		nested        bool
		header        http.Header
		want          string
		wantBearer    bool
		wantUpgradeTo string
	}{
		{name: "ordinary request", want: "kip"},
		{name: "SPDY upgrade", header: header("Connection", "Upgrade", "Upgrade", "SPDY/3.1"), want: "kipUpgrade", wantUpgradeTo: "SPDY/3.1"},
		{name: "WebSocket upgrade in lower case", header: header("connection", "keep-alive, upgrade", "upgrade", "websocket"), want: "kipUpgrade", wantUpgradeTo: "websocket"},
		{name: "Connection: Upgrade without Upgrade is ordinary", header: header("Connection", "Upgrade"), want: "kip"},
		{name: "Upgrade without Connection is ordinary", header: header("Upgrade", "SPDY/3.1"), want: "kip"},
		{name: "passthrough request", passthru: true, want: "bearer", wantBearer: true},
		{name: "passthrough upgrade", passthru: true, header: header("Connection", "Upgrade", "Upgrade", "SPDY/3.1"), want: "bearerUpgrade", wantBearer: true, wantUpgradeTo: "SPDY/3.1"},
		{name: "passthrough with nested impersonation", passthru: true, nested: true, header: header("Impersonate-User", "bob"), want: "bearer", wantBearer: true},
		{name: "nested impersonation of a certificate user", nested: true, header: header("Impersonate-User", "bob"), want: "kip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			rec := &recordingTransport{}
			rt := &transports{
				kip:           namedTransport{"kip", &got, rec},
				kipUpgrade:    namedTransport{"kipUpgrade", &got, rec},
				bearer:        namedTransport{"bearer", &got, rec},
				bearerUpgrade: namedTransport{"bearerUpgrade", &got, rec},
			}
			var u user.Info = certUser
			if tt.passthru {
				u = upstreamVerified(t, "sa-token", serviceAccount)
			}
			req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/ns/pods/p/exec", nil)
			if tt.header != nil {
				req.Header = tt.header.Clone()
			}
			w := httptest.NewRecorder()
			chainTo(newProxy(testUpstream, rt), u, tt.nested).ServeHTTP(w, req)
			if !reflect.DeepEqual(got, []string{tt.want}) {
				t.Fatalf("transports used = %q, want %q (status %d %s)", got, tt.want, w.Code, w.Body)
			}
			out := rec.requests()[0]
			wantAuth := ""
			if tt.wantBearer {
				wantAuth = "Bearer sa-token"
			}
			if auth := out.Header.Get("Authorization"); auth != wantAuth {
				t.Errorf("Authorization = %q, want %q", auth, wantAuth)
			}
			if up := out.Header.Get("Upgrade"); up != tt.wantUpgradeTo {
				t.Errorf("Upgrade = %q, want %q", up, tt.wantUpgradeTo)
			}
		})
	}
}

// TestProxyErrorsReachClientGo checks that kip's errors are Status objects
// client-go (and so kubectl) can read: the reason and the honest message
// must survive, not turn into "an error on the server has prevented the
// request from succeeding".
func TestProxyErrorsReachClientGo(t *testing.T) {
	down := closedPort(t)
	tests := []struct {
		name        string
		impersonate string
		wantReason  metav1.StatusReason
		wantMessage string
	}{
		{
			name:        "upstream down",
			wantReason:  metav1.StatusReasonServiceUnavailable,
			wantMessage: "the upstream API server " + down + " is unavailable",
		},
		{
			name:        "impersonation header reaching the proxy",
			impersonate: "system:admin",
			wantReason:  metav1.StatusReasonInternalError,
			wantMessage: `header "Impersonate-User" reached the proxy step`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			front := httptest.NewServer(chainTo(newProxy(&url.URL{Scheme: "http", Host: down}, tr), certUser, false))
			t.Cleanup(front.Close)
			client, err := kubernetes.NewForConfig(&rest.Config{
				Host:        front.URL,
				Impersonate: rest.ImpersonationConfig{UserName: tt.impersonate},
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
			if got := apierrors.ReasonForError(err); got != tt.wantReason {
				t.Errorf("reason = %q, want %q (error %v)", got, tt.wantReason, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMessage) || strings.Contains(err.Error(), "has prevented the request") {
				t.Errorf("client-go reports %v, want the message %q", err, tt.wantMessage)
			}
		})
	}
}

// TestWatchesUseSmallBuffers checks which copy buffer each kind of request
// gets: a watch holds its buffer for its whole life.
func TestWatchesUseSmallBuffers(t *testing.T) {
	p := newProxy(&url.URL{Scheme: "https", Host: "upstream"}, http.DefaultTransport)
	for _, tc := range []struct {
		info *request.RequestInfo
		want int
	}{
		{&request.RequestInfo{IsResourceRequest: true, Verb: "watch"}, watchBufferSize},
		{&request.RequestInfo{IsResourceRequest: true, Verb: "list"}, shortBufferSize},
		{&request.RequestInfo{IsResourceRequest: true, Verb: "get"}, shortBufferSize},
		{nil, shortBufferSize},
	} {
		ctx := context.Background()
		if tc.info != nil {
			ctx = request.WithRequestInfo(ctx, tc.info)
		}
		if got := len(p.reverseFor(ctx).BufferPool.Get()); got != tc.want {
			t.Errorf("%+v: buffer of %d bytes, want %d", tc.info, got, tc.want)
		}
	}
}
