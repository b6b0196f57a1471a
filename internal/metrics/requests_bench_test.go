package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"
)

// nopWriter is the least a response writer can be.
type nopWriter struct{ header http.Header }

func (w nopWriter) Header() http.Header         { return w.header }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// BenchmarkRequestMetrics is what counting a small GET costs in each of
// kip's two metrics filters, around a handler that writes a body; "both,
// gateway" labels it with the cluster the context names.
func BenchmarkRequestMetrics(b *testing.B) {
	r := NewRecorder().Requests()
	gw := NewRecorder(WithClusterOf(clusterOf)).Requests()
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(emptyObject) })
	info := &request.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "configmaps", Namespace: "default", Name: "c"}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps/c", nil)
	req = req.WithContext(request.WithRequestInfo(context.WithValue(req.Context(), testCluster{}, "prod"), info))
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"none", inner},
		{"WithRequests", r.WithRequests(inner)},
		{"WithUpstream", r.WithUpstream(inner)},
		{"both", r.WithRequests(r.WithUpstream(inner))},
		{"both, gateway", gw.WithRequests(gw.WithUpstream(inner))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := nopWriter{header: http.Header{}}
			tc.h.ServeHTTP(w, req) // the first request admits the resource label
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}

var emptyObject = []byte("{}")
