package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// cannedTransport answers every request at once with a small ConfigMap,
// so that what a benchmark counts is the proxy step's own work.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, ProtoMajor: 2, Request: r,
		Header: http.Header{
			"Content-Type":   {"application/json"},
			"Audit-Id":       {"f3b5e1c2-0000-0000-0000-000000000000"},
			"Content-Length": {strconv.Itoa(len(c.body))},
		},
		ContentLength: int64(len(c.body)),
		Body:          io.NopCloser(bytes.NewReader(c.body)),
	}, nil
}

type benchWriter struct{ header http.Header }

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(int)             {}
func (w *benchWriter) Flush()                      {}

// BenchmarkProxySmallGet is the proxy step for a small GET by a
// certificate user: the checks, the impersonation headers and
// httputil.ReverseProxy, with the upstream answering from memory.
func BenchmarkProxySmallGet(b *testing.B) {
	target, _ := url.Parse("https://127.0.0.1:6443")
	p := newProxy(target, cannedTransport{body: bytes.Repeat([]byte("x"), 500)})
	u := &user.DefaultInfo{Name: "kip-bench", Groups: []string{"system:authenticated"},
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"X509SHA256=abc"}}}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/bench/configmaps/small", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kip-bench")
	ctx := request.WithUser(req.Context(), u)
	ctx = request.WithRequestInfo(ctx, &request.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "configmaps"})
	req = req.WithContext(ctx)
	w := &benchWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		p.ServeHTTP(w, req)
	}
}
