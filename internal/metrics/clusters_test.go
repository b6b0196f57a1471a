package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"
)

// TestClusters checks the gateway's cluster metrics after a sequence of
// events, each series exactly: "absent" is a series /metrics does not
// serve.
func TestClusters(t *testing.T) {
	// get is a request to cluster, or to none for "".
	get := func(cluster string) func(*Recorder) {
		return func(rec *Recorder) {
			r := rec.Requests()
			h := r.WithRequests(r.WithUpstream(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })))
			ctx := request.WithRequestInfo(context.Background(), &request.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "pods"})
			if cluster != "" {
				ctx = context.WithValue(ctx, testCluster{}, cluster)
			}
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		}
	}
	up := func(name string, up bool) func(*Recorder) {
		return func(rec *Recorder) { rec.Clusters().SetUp(name, up) }
	}
	forget := func(name string) func(*Recorder) {
		return func(rec *Recorder) { rec.Clusters().Forget(name) }
	}
	requests := func(cluster string) string {
		return `kip_requests_total{cluster="` + cluster + `",code="200",resource="pods",verb="get"}`
	}
	durations := func(cluster string) string {
		return `kip_upstream_request_duration_seconds_count{cluster="` + cluster + `",resource="pods",verb="get"}`
	}
	gateway := []Option{WithClusterOf(clusterOf)}

	tests := []struct {
		name   string
		opts   []Option
		events []func(*Recorder)
		want   map[string]string
	}{
		{
			name:   "a cluster that answered is up",
			opts:   gateway,
			events: []func(*Recorder){up("a", true)},
			want:   map[string]string{`kip_cluster_up{cluster="a"}`: "1"},
		},
		{
			name:   "one that failed since is down",
			opts:   gateway,
			events: []func(*Recorder){up("a", true), up("a", false)},
			want:   map[string]string{`kip_cluster_up{cluster="a"}`: "0"},
		},
		{
			name:   "and up again when it answers",
			opts:   gateway,
			events: []func(*Recorder){up("a", false), up("a", true)},
			want:   map[string]string{`kip_cluster_up{cluster="a"}`: "1"},
		},
		{
			name:   "Forget removes the cluster's series, and only its",
			opts:   gateway,
			events: []func(*Recorder){up("a", true), up("b", false), get("a"), get("b"), forget("a")},
			want: map[string]string{
				`kip_cluster_up{cluster="a"}`: "absent", requests("a"): "absent", durations("a"): "absent",
				`kip_cluster_up{cluster="b"}`: "0", requests("b"): "1", durations("b"): "1",
			},
		},
		{
			name:   "a cluster registered again counts from zero",
			opts:   gateway,
			events: []func(*Recorder){up("a", true), get("a"), get("a"), forget("a"), up("a", true), get("a")},
			want:   map[string]string{`kip_cluster_up{cluster="a"}`: "1", requests("a"): "1", durations("a"): "1"},
		},
		{
			name:   "Forget of a name never seen changes nothing",
			opts:   gateway,
			events: []func(*Recorder){up("a", true), get("a"), forget("never")},
			want:   map[string]string{`kip_cluster_up{cluster="a"}`: "1", requests("a"): "1"},
		},
		{
			name:   "Forget of \"\" keeps the requests addressed to no cluster",
			opts:   gateway,
			events: []func(*Recorder){get(""), forget("")},
			want:   map[string]string{requests(""): "1", durations(""): "1", `kip_longrunning_requests{cluster="",kind="watch"}`: "0"},
		},
		{
			name:   "a request without a cluster gets cluster=\"\"",
			opts:   gateway,
			events: []func(*Recorder){get("")},
			want:   map[string]string{requests(""): "1", durations(""): "1"},
		},
		{
			name:   "single-cluster mode: every request gets cluster=\"\"",
			events: []func(*Recorder){get("a")},
			want:   map[string]string{requests(""): "1", requests("a"): "absent"},
		},
		{
			name: "registered and refused entries",
			opts: gateway,
			events: []func(*Recorder){
				func(rec *Recorder) { rec.Clusters().Registered(3, 2) },
				func(rec *Recorder) { rec.Clusters().Refused(SourceDir) },
				func(rec *Recorder) { rec.Clusters().Refused(SourceSecrets) },
				func(rec *Recorder) { rec.Clusters().Refused(SourceSecrets) },
			},
			want: map[string]string{
				`kip_clusters{state="registered"}`:                    "3",
				`kip_clusters{state="refused"}`:                       "2",
				`kip_cluster_entries_refused_total{source="dir"}`:     "1",
				`kip_cluster_entries_refused_total{source="secrets"}`: "2",
			},
		},
		{
			name:   "a later change replaces the counts",
			opts:   gateway,
			events: []func(*Recorder){func(rec *Recorder) { rec.Clusters().Registered(3, 2) }, func(rec *Recorder) { rec.Clusters().Registered(4, 0) }},
			want:   map[string]string{`kip_clusters{state="registered"}`: "4", `kip_clusters{state="refused"}`: "0"},
		},
		{
			name: "gateway mode starts every count at zero",
			opts: gateway,
			want: map[string]string{
				`kip_clusters{state="registered"}`:                    "0",
				`kip_clusters{state="refused"}`:                       "0",
				`kip_cluster_entries_refused_total{source="dir"}`:     "0",
				`kip_cluster_entries_refused_total{source="secrets"}`: "0",
			},
		},
		{
			name: "single-cluster mode serves no cluster series",
			want: map[string]string{
				`kip_clusters{state="registered"}`:                  "absent",
				`kip_cluster_entries_refused_total{source="dir"}`:   "absent",
				`kip_longrunning_requests{cluster="",kind="watch"}`: "0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder(tt.opts...)
			admitPods(rec)
			for _, event := range tt.events {
				event(rec)
			}
			for series, want := range tt.want {
				if got := exposedValue(t, rec, series); got != want {
					t.Errorf("%s = %s, want %s", series, got, want)
				}
			}
		})
	}
}

// TestForgetLongRunning checks that a watch open while its cluster is
// forgotten ends without leaving a series behind, and that the cluster,
// registered again, counts its watches from zero.
func TestForgetLongRunning(t *testing.T) {
	rec := NewRecorder(WithClusterOf(clusterOf))
	r := rec.Requests()
	const series = `kip_longrunning_requests{cluster="a",kind="watch"}`
	ctx := context.WithValue(context.Background(), testCluster{}, "a")
	ctx = request.WithRequestInfo(ctx, &request.RequestInfo{IsResourceRequest: true, Verb: "watch", Resource: "pods"})
	var during string
	watch := r.WithUpstream(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		during = exposedValue(t, rec, series)
		rec.Clusters().Forget("a")
	}))
	watch.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if during != "1" {
		t.Fatalf("%s = %s during the watch, want 1", series, during)
	}
	if got := exposedValue(t, rec, series); got != "absent" {
		t.Fatalf("%s = %s after the cluster was forgotten, want absent", series, got)
	}
	watch = r.WithUpstream(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { during = exposedValue(t, rec, series) }))
	watch.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if during != "1" {
		t.Fatalf("%s = %s during a watch to the cluster registered again, want 1", series, during)
	}
}
