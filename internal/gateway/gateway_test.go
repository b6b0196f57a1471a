package gateway

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/proxy"
)

// seen is what an upstream cluster received.
type seen struct{ path, auth, user string }

// cluster is a TLS server standing in for one cluster's API server. Its
// /slow path answers headers and then holds the response open, as a watch
// does, until the request ends.
type cluster struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []seen
	slow chan struct{}
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{slow: make(chan struct{}, 4)}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.got = append(c.got, seen{r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Impersonate-User")})
		c.mu.Unlock()
		if r.URL.Path == "/slow" {
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			c.slow <- struct{}{}
			// Until the request ends, or long after a test gave up on
			// it, so that a failing test does not hang on closing.
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cluster) requests() []seen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]seen(nil), c.got...)
}

// writeEntry writes cluster name's kubeconfig into dir, with kip's token.
func writeEntry(t *testing.T, dir, name string, c *cluster, token string) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: c.srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})}
	kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "kip"}
	kc.CurrentContext = "ctx"
	if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, dir string) clusters.Snapshot {
	t.Helper()
	cs, refused, err := clusters.LoadDir(dir)
	if err != nil || len(refused) > 0 {
		t.Fatalf("LoadDir: %v %v", refused, err)
	}
	return clusters.Snapshot{Clusters: cs}
}

// gateway is the filter and the proxy step with a fixed caller between
// them, where kip's authentication would be, served over HTTP.
type gateway struct {
	ups    *Upstreams
	srv    *httptest.Server
	builds atomic.Int32
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{}
	g.ups = NewUpstreams(func(_ context.Context, c clusters.Cluster, health *Health) (*Backend, error) {
		g.builds.Add(1)
		p, err := proxy.New(c.Config, proxy.WithHealth(health))
		if err != nil {
			return nil, err
		}
		return &Backend{Proxy: p, Check: func(context.Context) error { return nil }}, nil
	}, Options{})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/apis/login.kip.dev/") {
			if _, ok := ClusterFrom(r.Context()); ok {
				t.Errorf("the exchange path was given a cluster")
			}
			_, _ = io.WriteString(w, "exchange")
			return
		}
		g.ups.WithBackend(withAlice(g.ups)).ServeHTTP(w, r)
	})
	g.srv = httptest.NewServer(WithRouting(inner, g.ups.Known, func(p string) bool { return strings.HasPrefix(p, "/apis/login.kip.dev/") }))
	t.Cleanup(g.srv.Close)
	return g
}

// withAlice is where kip's authentication would be: every caller is alice.
func withAlice(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), &user.DefaultInfo{Name: "alice"})))
	})
}

func (g *gateway) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(g.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRouting(t *testing.T) {
	a, b := newCluster(t), newCluster(t)
	dir := t.TempDir()
	writeEntry(t, dir, "a", a, "a1")
	writeEntry(t, dir, "b", b, "b1")
	g := newGateway(t)
	if ch := g.ups.Apply(load(t, dir)); len(ch.Added) != 2 {
		t.Fatalf("added %v", ch.Added)
	}
	if n := g.builds.Load(); n != 0 {
		t.Fatalf("%d proxies built at registration; they are built on first use", n)
	}

	tests := []struct {
		path     string
		code     int
		at       *cluster
		received string
	}{
		{"/clusters/a/api/v1/pods", 200, a, "/api/v1/pods"},
		{"/clusters/b/api/v1/pods", 200, b, "/api/v1/pods"},
		{"/clusters/a", 200, a, "/"},
		// Never cleaned, never elsewhere than the first segment says.
		{"/clusters/a/../b/api", 200, a, "/../b/api"},
		{"/clusters/a/%2e%2e/b/api", 200, a, "/%2e%2e/b/api"},
		{"/clusters/a/%2F..%2Fb/api", 200, a, "/%2F..%2Fb/api"},
		{"/clusters/a//api", 200, a, "//api"},
		{"/clusters/%2e%2e/b/api", 404, nil, ""},
		{"/clusters/a%2Fb/api", 404, nil, ""},
		{"/clusters/c/api", 404, nil, ""},
		{"/clusters//b/api", 404, nil, ""},
		{"/api/v1/pods", 404, nil, ""},
		{"/b/api", 404, nil, ""},
		// kip's own API has one spelling, at kip's root: under a cluster
		// it would reach the unauthenticated exchange by another path.
		{"/clusters/a/apis/login.kip.dev/v1alpha1/tokencredentialrequests", 404, nil, ""},
		{"/clusters/a/apis/login.kip.dev/v1alpha1/clusters", 404, nil, ""},
		{"/clusters/a/apis%2Flogin.kip.dev/v1alpha1/tokencredentialrequests", 404, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			beforeA, beforeB := len(a.requests()), len(b.requests())
			code, body := g.get(t, tt.path)
			if code != tt.code {
				t.Fatalf("%s: %d %s, want %d", tt.path, code, body, tt.code)
			}
			gotA, gotB := a.requests()[beforeA:], b.requests()[beforeB:]
			if tt.at == nil {
				if len(gotA)+len(gotB) > 0 {
					t.Fatalf("%s reached a cluster: a %v, b %v", tt.path, gotA, gotB)
				}
				var st metav1.Status
				if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" || st.Code != 404 {
					t.Fatalf("%s: answer %q is not a 404 Status", tt.path, body)
				}
				return
			}
			mine, other, token := gotA, gotB, "Bearer a1"
			if tt.at == b {
				mine, other, token = gotB, gotA, "Bearer b1"
			}
			if len(other) > 0 || len(mine) != 1 {
				t.Fatalf("%s: the named cluster saw %v, the other %v", tt.path, mine, other)
			}
			if want := (seen{tt.received, token, "alice"}); mine[0] != want {
				t.Fatalf("%s: the cluster received %+v, want %+v", tt.path, mine[0], want)
			}
		})
	}
	if n := g.builds.Load(); n != 2 {
		t.Errorf("%d proxies built for two clusters", n)
	}
	if code, body := g.get(t, "/apis/login.kip.dev/v1alpha1/tokencredentialrequests"); code != 200 || body != "exchange" {
		t.Errorf("the exchange path: %d %q", code, body)
	}
}

func TestRegistryChanges(t *testing.T) {
	a, b := newCluster(t), newCluster(t)
	dir := t.TempDir()
	writeEntry(t, dir, "a", a, "a1")
	writeEntry(t, dir, "b", b, "b1")
	g := newGateway(t)
	g.ups.Apply(load(t, dir))

	// Open a watch-like request to each cluster.
	open := func(name string, c *cluster) <-chan error {
		done := make(chan error, 1)
		go func() {
			resp, err := http.Get(g.srv.URL + "/clusters/" + name + "/slow")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			done <- err
		}()
		select {
		case <-c.slow:
		case <-time.After(10 * time.Second):
			t.Fatalf("the request to %s never reached it", name)
		}
		return done
	}
	toA, toB := open("a", a), open("b", b)

	// Rotate a's credentials: its open request ends, b's does not, and the
	// next request to a carries the new token.
	writeEntry(t, dir, "a", a, "a2")
	if ch := g.ups.Apply(load(t, dir)); strings.Join(ch.Changed, ",") != "a" {
		t.Fatalf("changed %v, want a", ch.Changed)
	}
	select {
	case err := <-toA:
		if err != nil {
			t.Fatalf("the stream to a ended with %v, not as a finished response", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request to a outlived a's replaced entry")
	}
	select {
	case err := <-toB:
		t.Fatalf("the request to b ended (%v) when a changed", err)
	case <-time.After(300 * time.Millisecond):
	}
	if code, _ := g.get(t, "/clusters/a/api"); code != 200 {
		t.Fatalf("a after rotation: %d", code)
	}
	if got := a.requests(); got[len(got)-1].auth != "Bearer a2" {
		t.Fatalf("a after rotation received %q", got[len(got)-1].auth)
	}

	// Remove b: its open request ends, and b is unknown from then on.
	if err := os.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if ch := g.ups.Apply(load(t, dir)); strings.Join(ch.Removed, ",") != "b" {
		t.Fatalf("removed %v, want b", ch.Removed)
	}
	select {
	case err := <-toB:
		if err != nil {
			t.Fatalf("the stream to b ended with %v, not as a finished response", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request to b outlived b's removal")
	}
	if code, _ := g.get(t, "/clusters/b/api"); code != 404 {
		t.Fatalf("b after removal: %d, want 404", code)
	}
}

func TestUnusableEntry(t *testing.T) {
	dir := t.TempDir()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", CertificateAuthorityData: []byte("not a certificate")}
	kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Token: "t"}
	kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "kip"}
	kc.CurrentContext = "ctx"
	if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, "broken")); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	g.ups.Apply(load(t, dir))
	code, body := g.get(t, "/clusters/broken/api")
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusServiceUnavailable || st.Kind != "Status" || st.Code != 503 {
		t.Fatalf("an unusable entry: %d %s, want a 503 Status", code, body)
	}
}

func TestNoClusterInContextFailsClosed(t *testing.T) {
	ups := NewUpstreams(func(context.Context, clusters.Cluster, *Health) (*Backend, error) {
		t.Fatal("a backend was built for a request without a cluster")
		return nil, nil
	}, Options{})
	for name, h := range map[string]http.Handler{"backend": ups.WithBackend(ups), "proxy step": ups, "policy": WithPolicy(ups)} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/api", nil))
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusInternalServerError {
			t.Errorf("%s: got %d, want a refusal", name, rec.Code)
		}
	}
	req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/api", nil)
	if _, ok, err := ups.Authenticator().AuthenticateRequest(req); ok || err == nil {
		t.Errorf("the authenticator accepted a request without a cluster")
	}
	if d, _, _ := ups.Authorizer().Authorize(context.Background(), nil); d != authorizer.DecisionDeny {
		t.Errorf("the authorizer gave %v without a cluster", d)
	}
}
