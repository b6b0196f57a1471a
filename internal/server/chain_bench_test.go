package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
)

// discardWriter is the least a response writer can be, so that what a
// benchmark counts is the chain's own work.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// benchConfig is the generic configuration kip serves with by default (no
// audit policy), a fixed caller and an authorizer that allows everything.
func benchConfig() *genericapiserver.Config {
	c := NewGenericConfig()
	c.RequestInfoResolver = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	resp := &authenticator.Response{User: &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}}}
	c.Authentication.Authenticator = authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return resp, true, nil
	})
	c.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	return c
}

var smallBody = []byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","namespace":"default"}}`)

// BenchmarkChainLayers serves a small GET through the outermost n layers
// of kip's chain in front of a handler that writes a small body, for every
// n: the step from one line to the next is what that layer costs.
func BenchmarkChainLayers(b *testing.B) {
	c := benchConfig()
	layers := handlerLayers(credentialLayers{}, c, observability{requests: metrics.NewRecorder().Requests()}, gatewayLayers{})
	slices.Reverse(layers) // outermost first
	for n := 0; n <= len(layers); n++ {
		name := "none"
		if n > 0 {
			name = layers[n-1].name
		}
		b.Run(fmt.Sprintf("%02d %s", n, name), func(b *testing.B) {
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(smallBody) })
			for i := n - 1; i >= 0; i-- {
				h = layers[i].wrap(h)
			}
			serveSmallGets(b, h)
		})
	}
}

func serveSmallGets(b *testing.B, h http.Handler) {
	serveRequests(b, h, httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps/c", nil))
}

// serveRequests serves req again and again, as kubectl sends it.
func serveRequests(b *testing.B, h http.Handler, req *http.Request) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kubectl/v1.37.2")
	w := &discardWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkGatewayChain serves the same small GET through kip's whole
// chain in single-cluster mode and as a gateway to one cluster, with the
// same caller, the same allow-all authorizer and a handler in place of
// each proxy: the difference is what routing to a cluster costs.
func BenchmarkGatewayChain(b *testing.B) {
	write := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(smallBody) })
	b.Run("single", func(b *testing.B) {
		c := benchConfig()
		serveSmallGets(b, buildHandlerChain(write, credentialLayers{}, c, observability{requests: metrics.NewRecorder().Requests()}, gatewayLayers{}))
	})
	b.Run("gateway", func(b *testing.B) {
		c := benchConfig()
		authn, authz := c.Authentication.Authenticator, c.Authorization.Authorizer
		ups := gateway.NewUpstreams(func(context.Context, clusters.Cluster, *gateway.Health) (*gateway.Backend, error) {
			return &gateway.Backend{Proxy: write, Authenticator: authn, Authorizer: authz,
				Check: func(context.Context) error { return nil }}, nil
		}, gateway.Options{LongRunning: longRunning(c.LongRunningFunc)})
		open, err := clusters.CompilePolicy("", nil)
		if err != nil {
			b.Fatal(err)
		}
		ups.Apply(clusters.Snapshot{Clusters: []clusters.Cluster{{Name: "a", Policy: open}}})
		c.Authentication.Authenticator, c.Authorization.Authorizer = ups.Authenticator(), ups.Authorizer()
		gw := gatewayLayers{
			routing: func(h http.Handler) http.Handler {
				return gateway.WithRouting(h, ups.Known, func(string) bool { return false })
			},
			backend: ups.WithBackend, policy: gateway.WithPolicy, clusterShare: true,
		}
		rec := metrics.NewRecorder(metrics.WithClusterOf(gateway.ClusterFrom))
		h := buildHandlerChain(ups, credentialLayers{}, c, observability{requests: rec.Requests()}, gw)
		req := httptest.NewRequest(http.MethodGet, "/clusters/a/api/v1/namespaces/default/configmaps/c", nil)
		serveRequests(b, h, req)
	})
}
