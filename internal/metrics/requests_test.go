package metrics

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/component-base/metrics/testutil"
)

func counterValue(t *testing.T, r *Requests, cluster, verb, resource, code string) float64 {
	t.Helper()
	v, err := testutil.GetCounterMetricValue(r.total.WithLabelValues(cluster, verb, resource, code))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRequestLabels(t *testing.T) {
	r := NewRecorder().Requests()
	resource := func(verb, resource, subresource string) *request.RequestInfo {
		return &request.RequestInfo{IsResourceRequest: true, Verb: verb, Resource: resource, Subresource: subresource}
	}
	tests := []struct {
		name       string
		info       *request.RequestInfo
		code       int
		wantVerb   string
		wantLabel  string
		wantCode   string
		panicAfter bool // the handler writes code, then panics
	}{
		{name: "a served resource gets its own label", info: resource("get", "widgets", ""), code: 200, wantVerb: "get", wantLabel: "widgets", wantCode: "200"},
		{name: "and keeps it when refused", info: resource("get", "widgets", ""), code: 403, wantVerb: "get", wantLabel: "widgets", wantCode: "403"},
		{name: "a subresource is part of the label", info: resource("create", "widgets", "exec"), code: 101, wantVerb: "create", wantLabel: "widgets/exec", wantCode: "101"},
		{name: "a made-up resource stays other", info: resource("get", "made-up-1", ""), code: 404, wantVerb: "get", wantLabel: "other", wantCode: "404"},
		{name: "so does one that is refused", info: resource("list", "made-up-2", ""), code: 403, wantVerb: "list", wantLabel: "other", wantCode: "403"},
		{name: "a made-up method is other", info: &request.RequestInfo{Verb: "brew"}, code: 405, wantVerb: "other", wantLabel: "", wantCode: "405"},
		{name: "no request info", info: nil, code: 401, wantVerb: "other", wantLabel: "", wantCode: "401"},
		{name: "a broken stream keeps its code", info: resource("get", "widgets", ""), code: 200, wantVerb: "get", wantLabel: "widgets", wantCode: "200", panicAfter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counterValue(t, r, "", tt.wantVerb, tt.wantLabel, tt.wantCode)
			h := r.WithRequests(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.code)
				if tt.panicAfter {
					panic(http.ErrAbortHandler)
				}
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.info != nil {
				req = req.WithContext(request.WithRequestInfo(req.Context(), tt.info))
			}
			func() {
				defer func() { _ = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
			if got := counterValue(t, r, "", tt.wantVerb, tt.wantLabel, tt.wantCode) - before; got != 1 {
				t.Fatalf("kip_requests_total{verb=%q,resource=%q,code=%q} grew by %v, want 1", tt.wantVerb, tt.wantLabel, tt.wantCode, got)
			}
		})
	}
}

// testCluster is the context key under which these tests address a
// request to a cluster, as the gateway's routing does.
type testCluster struct{}

func clusterOf(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(testCluster{}).(string)
	return name, ok
}

// TestClusterLabel checks the cluster label of every request metric, in
// both modes: the label set is the same, and a request addressed to no
// cluster, or served in single-cluster mode, has cluster="".
func TestClusterLabel(t *testing.T) {
	gateway := []Option{WithClusterOf(clusterOf)}
	tests := []struct {
		name        string
		opts        []Option
		addressedTo string // "" for a request that names no cluster
		wantCluster string
	}{
		{name: "gateway: a request to a cluster", opts: gateway, addressedTo: "prod", wantCluster: "prod"},
		{name: "gateway: a request without a cluster", opts: gateway, wantCluster: ""},
		{name: "single-cluster: the label is empty", wantCluster: ""},
		{name: "single-cluster: even if the context names one", addressedTo: "prod", wantCluster: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder(tt.opts...)
			admitPods(rec)
			r := rec.Requests()
			var during float64
			watch := r.WithUpstream(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				during = gaugeValue(t, rec, `kip_longrunning_requests{cluster="`+tt.wantCluster+`",kind="watch"}`)
			}))
			get := r.WithRequests(r.WithUpstream(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })))
			serve := func(h http.Handler, info *request.RequestInfo) {
				ctx := request.WithRequestInfo(context.Background(), info)
				if tt.addressedTo != "" {
					ctx = context.WithValue(ctx, testCluster{}, tt.addressedTo)
				}
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
			}
			serve(get, &request.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "pods"})
			serve(watch, &request.RequestInfo{IsResourceRequest: true, Verb: "watch", Resource: "pods"})

			for series, want := range map[string]string{
				`kip_requests_total{cluster="` + tt.wantCluster + `",code="200",resource="pods",verb="get"}`:               "1",
				`kip_upstream_request_duration_seconds_count{cluster="` + tt.wantCluster + `",resource="pods",verb="get"}`: "1",
			} {
				if got := exposedValue(t, rec, series); got != want {
					t.Errorf("%s = %s, want %s", series, got, want)
				}
			}
			if during != 1 {
				t.Errorf("kip_longrunning_requests{cluster=%q,kind=\"watch\"} = %v during the watch, want 1", tt.wantCluster, during)
			}
		})
	}
}

// admitPods gives pods its resource label, as a request the upstream
// served would have: the time of a request is recorded before its answer
// admits the resource.
func admitPods(rec *Recorder) {
	rec.Requests().admit(&request.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "pods"}, http.StatusOK)
}

func gaugeValue(t *testing.T, r *Recorder, series string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(exposedValue(t, r, series), 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

func TestResourceLabelsAreBounded(t *testing.T) {
	r := NewRecorder().Requests()
	for i := range maxResources + 10 {
		info := &request.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "r" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))}
		r.admit(info, http.StatusOK)
	}
	if p := r.resources.current.Load(); p == nil || len(*p) != maxResources {
		t.Fatalf("%d resource labels, want the bound %d", len(*p), maxResources)
	}
}

func TestLongRunningInFlight(t *testing.T) {
	r := NewRecorder().Requests()
	gauge := r.gauge(inFlightKey{kind: kindExec})
	var during float64
	h := r.WithUpstream(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		during, _ = testutil.GetGaugeMetricValue(gauge)
	}))
	before, _ := testutil.GetGaugeMetricValue(gauge)
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req = req.WithContext(request.WithRequestInfo(req.Context(), &request.RequestInfo{IsResourceRequest: true, Verb: "create", Resource: "pods", Subresource: "exec"}))
	h.ServeHTTP(httptest.NewRecorder(), req)
	after, _ := testutil.GetGaugeMetricValue(gauge)
	if during != before+1 || after != before {
		t.Fatalf("exec in flight: %v before, %v during, %v after; want one more only during", before, during, after)
	}
}

// hijackable is a ResponseWriter of an HTTP/1.1 connection.
type hijackable struct{ *httptest.ResponseRecorder }

func (hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	a, _ := net.Pipe()
	return a, nil, nil
}

func TestCodeRecorderKeepsFlushAndHijack(t *testing.T) {
	rec := &codeRecorder{ResponseWriter: hijackable{httptest.NewRecorder()}}
	var w http.ResponseWriter = rec
	if _, ok := w.(http.Flusher); !ok {
		t.Fatal("the recorder hides http.Flusher")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Fatal("the recorder hides http.Hijacker")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if rec.code != http.StatusSwitchingProtocols {
		t.Fatalf("a hijacked connection is recorded as %d, want 101", rec.code)
	}
}

// discard is a ResponseWriter that costs nothing, so that the benchmark
// measures the filters alone.
type discard struct{ header http.Header }

func (d discard) Header() http.Header       { return d.header }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
func (discard) Flush()                      {}

// BenchmarkRequestPath compares a handler with and without the request
// metrics, as kip's chain places them: WithRequests outside, WithUpstream
// around the proxy.
func BenchmarkRequestPath(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r := NewRecorder().Requests()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps/x", nil)
	req = req.WithContext(request.WithRequestInfo(req.Context(), &request.RequestInfo{
		IsResourceRequest: true, Verb: "get", APIVersion: "v1", Namespace: "default", Resource: "configmaps", Name: "x",
	}))
	w := discard{header: http.Header{}}
	for _, bench := range []struct {
		name string
		h    http.Handler
	}{
		{"without metrics", ok},
		{"with metrics", r.WithRequests(r.WithUpstream(ok))},
	} {
		b.Run(bench.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bench.h.ServeHTTP(w, req)
			}
		})
	}
}
