package clusters

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		path       string
		name, rest string
		notRouted  bool // ErrNotRouted; otherwise "" name means a bad name
	}{
		{path: "/clusters/prod/api/v1/pods", name: "prod", rest: "/api/v1/pods"},
		{path: "/clusters/prod", name: "prod", rest: "/"},
		{path: "/clusters/prod/", name: "prod", rest: "/"},
		{path: "/clusters/a-1/apis/apps/v1/namespaces/x/deployments", name: "a-1", rest: "/apis/apps/v1/namespaces/x/deployments"},
		// The rest goes to the named cluster byte for byte, never cleaned:
		// whatever it says, it cannot leave cluster a.
		{path: "/clusters/a/../b/api", name: "a", rest: "/../b/api"},
		{path: "/clusters/a/%2e%2e/b/api", name: "a", rest: "/%2e%2e/b/api"},
		{path: "/clusters/a/%2F..%2Fb/api", name: "a", rest: "/%2F..%2Fb/api"},
		{path: "/clusters/a//api", name: "a", rest: "//api"},
		{path: "/clusters/a/api/v1/namespaces/default/pods/p%2Fq", name: "a", rest: "/api/v1/namespaces/default/pods/p%2Fq"},
		// A first segment that is not a DNS label names no cluster.
		{path: "/clusters/../b/api"},
		{path: "/clusters/%2e%2e/b/api"},
		{path: "/clusters/a%2Fb/api"},
		{path: "/clusters/a%2fb/api"},
		{path: "/clusters//a/api"},
		{path: "/clusters/"},
		{path: "/clusters/A/api"},
		{path: "/clusters/a.b/api"},
		{path: "/clusters/a;b/api"},
		{path: "/clusters/-a/api"},
		{path: "/clusters/a%00/api"},
		{path: "/clusters/" + strings.Repeat("a", 64) + "/api"},
		// Outside the prefix: 404, never a default cluster.
		{path: "/api/v1/pods", notRouted: true},
		{path: "/clusters", notRouted: true},
		{path: "//clusters/a/api", notRouted: true},
		{path: "/Clusters/a/api", notRouted: true},
		{path: "/clusters%2Fa/api", notRouted: true},
		{path: "/%63lusters/a/api", notRouted: true},
		{path: "", notRouted: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			name, rest, err := Split(tt.path)
			switch {
			case tt.notRouted:
				if !errors.Is(err, ErrNotRouted) {
					t.Fatalf("Split = %q, %q, %v; want ErrNotRouted", name, rest, err)
				}
			case tt.name == "":
				if err == nil || errors.Is(err, ErrNotRouted) {
					t.Fatalf("Split = %q, %q, %v; want a bad-name error", name, rest, err)
				}
			default:
				if err != nil || name != tt.name || rest != tt.rest {
					t.Fatalf("Split = %q, %q, %v; want %q, %q", name, rest, err, tt.name, tt.rest)
				}
			}
		})
	}
}

// TestRewriteKeepsEscaping parses request lines as net/http's server does
// and checks what the cluster would be sent.
func TestRewriteKeepsEscaping(t *testing.T) {
	tests := []struct {
		target, name, sent, query string
	}{
		{"/clusters/a/api/v1/pods?watch=true", "a", "/api/v1/pods", "watch=true"},
		{"/clusters/a/%2e%2e/b/api", "a", "/%2e%2e/b/api", ""},
		{"/clusters/a/api/v1/namespaces/ns/configmaps/x%2Fy", "a", "/api/v1/namespaces/ns/configmaps/x%2Fy", ""},
		{"/clusters/a/../b/api", "a", "/../b/api", ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			req, err := http.ReadRequest(bufioReader("GET " + tt.target + " HTTP/1.1\r\nHost: kip\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			name, err := Rewrite(req.URL)
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.name || req.URL.EscapedPath() != tt.sent || req.URL.RawQuery != tt.query {
				t.Fatalf("Rewrite = %q, path %q, query %q; want %q, %q, %q", name, req.URL.EscapedPath(), req.URL.RawQuery, tt.name, tt.sent, tt.query)
			}
		})
	}
}

func TestRewriteRefuses(t *testing.T) {
	for _, raw := range []string{"/api/v1/pods", "/clusters/%2e%2e/api", "/clusters/a%2Fb/api"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		before := u.String()
		if name, err := Rewrite(u); err == nil {
			t.Errorf("Rewrite(%q) = %q, want an error", raw, name)
		}
		if u.String() != before {
			t.Errorf("Rewrite(%q) changed the URL to %q though it refused it", raw, u.String())
		}
	}
}

// FuzzSplit: for any path, either Split refuses it, or the name is a DNS
// label, it is exactly the first segment after the prefix, and prefix,
// name and rest put together give the path back unchanged.
func FuzzSplit(f *testing.F) {
	for _, seed := range []string{"/clusters/a/api", "/clusters/a/../b", "/clusters/%2e%2e/x", "/clusters/a%2Fb/", "/clusters/a", "//clusters/a", "/clusters//a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		name, rest, err := Split(path)
		if err != nil {
			return
		}
		if ValidName(name) != nil || strings.ContainsAny(name, "/%.") {
			t.Fatalf("Split(%q) routed to %q, not a DNS label", path, name)
		}
		after := strings.TrimPrefix(path, PathPrefix)
		first, _, _ := strings.Cut(after, "/")
		if first != name {
			t.Fatalf("Split(%q) = %q, but the first segment is %q", path, name, first)
		}
		bare := rest == "/" && path == PathPrefix+name // /clusters/<name> is its root
		if got := PathPrefix + name + rest; got != path && !bare {
			t.Fatalf("Split(%q) = %q + %q, which is not the path unchanged", path, name, rest)
		}
	})
}
