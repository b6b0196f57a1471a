package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/proxy"
)

// recordingObserver remembers the last state reported per cluster.
type recordingObserver struct{ up map[string]bool }

func (o *recordingObserver) Up(name string, up bool) { o.up[name] = up }
func (o *recordingObserver) Forget(name string)      { delete(o.up, name) }

func TestHealth(t *testing.T) {
	obs := &recordingObserver{up: map[string]bool{}}
	h := newHealth("a", obs)
	steps := []struct {
		name  string
		do    func()
		want  admission
		state string
	}{
		{"never contacted: check", nil, check, "idle"},
		{"a check succeeded: pass", h.Succeeded, pass, "up"},
		{"a round trip failed: refuse", func() { h.Failed(errors.New("connection refused")) }, refuse, "down"},
		{"still within the backoff: refuse", nil, refuse, "down"},
		{"past the backoff: one check", func() { time.Sleep(firstBackoff + 50*time.Millisecond) }, check, "down"},
		{"the others meanwhile: refuse", nil, refuse, "down"},
		{"the check failed: refuse, a longer backoff", func() { h.Failed(nil) }, refuse, "down"},
		{"past it, and up again", func() { time.Sleep(2*firstBackoff + 50*time.Millisecond); h.Succeeded() }, pass, "up"},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		got, err := h.admit()
		if got != s.want {
			t.Fatalf("%s: admit() = %v (%v), want %v", s.name, got, err, s.want)
		}
		if got == refuse && err == nil {
			t.Fatalf("%s: refused without saying why", s.name)
		}
		if st := h.status("a"); st.State != s.state {
			t.Fatalf("%s: state %q, want %q", s.name, st.State, s.state)
		}
	}
	if !obs.up["a"] {
		t.Fatal("the observer was not told the cluster is up again")
	}
}

// TestDownClusterFailsFast stops a cluster's server: the request that
// finds it down gets 503, the next ones get 503 without contacting it, and
// once it is back a request after the backoff is served again.
func TestDownClusterFailsFast(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	writeEntry(t, dir, "a", c, "t")
	var checks atomic.Int32
	ups := NewUpstreams(func(_ context.Context, cl clusters.Cluster, health *Health) (*Backend, error) {
		p, err := proxy.New(cl.Config, proxy.WithHealth(health))
		if err != nil {
			return nil, err
		}
		addr := c.srv.Listener.Addr().String()
		return &Backend{Proxy: p, Check: func(ctx context.Context) error {
			checks.Add(1)
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				_ = conn.Close()
			}
			return err
		}}, nil
	}, false, nil)
	ups.Apply(load(t, dir))
	srv := httptest.NewServer(WithRouting(ups.WithBackend(withAlice(ups)), ups.Known, func(string) bool { return false }))
	t.Cleanup(srv.Close)
	get := func() int {
		resp, err := http.Get(srv.URL + "/clusters/a/api")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 || checks.Load() != 1 {
		t.Fatalf("first request: %d after %d checks", code, checks.Load())
	}
	// Stop the cluster, keeping its address for later.
	addr := c.srv.Listener.Addr().String()
	c.srv.CloseClientConnections()
	_ = c.srv.Listener.Close()
	if code := get(); code != http.StatusBadGateway && code != http.StatusServiceUnavailable {
		t.Fatalf("the request that found the cluster down: %d", code)
	}
	before := checks.Load()
	for range 20 {
		if code := get(); code != http.StatusServiceUnavailable {
			t.Fatalf("a request to a down cluster: %d, want 503", code)
		}
	}
	if n := checks.Load() - before; n > 1 {
		t.Fatalf("%d checks for 20 requests within the backoff; a down cluster is checked once per backoff", n)
	}
	// Bring it back on the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the cluster's port was taken meanwhile: %v", err)
	}
	back := &http.Server{Handler: c.srv.Config.Handler, TLSConfig: c.srv.TLS, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = back.Serve(tls.NewListener(ln, c.srv.TLS)) }()
	t.Cleanup(func() { _ = back.Close() })
	deadline := time.Now().Add(3 * maxBackoff)
	for get() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the cluster was not served again once it came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPolicyRefusesBeforeTheCluster(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	writeEntry(t, dir, "open", c, "t")
	writeEntry(t, dir, "closed", c, "t")
	path := filepath.Join(dir, "closed")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withPolicy := strings.Replace(string(data), "    server:", "    extensions:\n    - name: kip.dev/access\n      extension:\n        groups: [admins]\n    server:", 1)
	if err := os.WriteFile(path, []byte(withPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	ups := NewUpstreams(func(_ context.Context, cl clusters.Cluster, health *Health) (*Backend, error) {
		p, err := proxy.New(cl.Config, proxy.WithHealth(health))
		return &Backend{Proxy: p, Check: func(context.Context) error { return nil }}, err
	}, false, nil)
	ups.Apply(load(t, dir))
	as := func(u user.Info, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), u)))
		})
	}
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"devs"}}
	ann := &user.DefaultInfo{Name: "ann", Groups: []string{"admins"}}
	tests := []struct {
		who     user.Info
		cluster string
		code    int
	}{
		{alice, "open", 200}, {alice, "closed", 403}, {ann, "closed", 200}, {ann, "open", 200},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(WithRouting(ups.WithBackend(as(tt.who, WithPolicy(ups))), ups.Known, func(string) bool { return false }))
		before := len(c.requests())
		resp, err := http.Get(srv.URL + "/clusters/" + tt.cluster + "/api")
		if err != nil {
			t.Fatal(err)
		}
		var st metav1.Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		_ = resp.Body.Close()
		srv.Close()
		reached := len(c.requests()) - before
		if resp.StatusCode != tt.code {
			t.Fatalf("%s at %s: %d, want %d", tt.who.GetName(), tt.cluster, resp.StatusCode, tt.code)
		}
		if tt.code == 403 && (reached != 0 || st.Kind != "Status" || st.Reason != metav1.StatusReasonForbidden) {
			t.Fatalf("%s at %s: the cluster saw %d requests; answer %+v", tt.who.GetName(), tt.cluster, reached, st)
		}
	}
	if got := strings.Join(ups.Reachable(alice), ","); got != "open" {
		t.Errorf("alice may reach %q, want open", got)
	}
	if got := strings.Join(ups.Reachable(ann), ","); got != "closed,open" {
		t.Errorf("ann may reach %q, want closed,open", got)
	}
}
