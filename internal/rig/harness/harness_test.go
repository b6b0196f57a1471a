package harness

import (
	"strings"
	"testing"
)

func TestMetricsCount(t *testing.T) {
	for _, tc := range []struct {
		name, metrics string
		want          int64
		wantErr       bool
	}{
		{name: "component-base", want: 123, metrics: "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 123\ngo_threads 9\n"},
		{name: "scientific notation", metrics: "go_goroutines 1.5e+03\n", want: 1500},
		{name: "a lookalike comes first", metrics: "go_goroutines_total 7\ngo_goroutines 8\n", want: 8},
		{name: "missing", metrics: "go_threads 9\n", wantErr: true},
		{name: "NaN", metrics: "go_goroutines NaN\n", wantErr: true},
		{name: "negative", metrics: "go_goroutines -1\n", wantErr: true},
		{name: "fraction", metrics: "go_goroutines 1.5\n", wantErr: true},
		{name: "absurd", metrics: "go_goroutines 1e30\n", wantErr: true},
		{name: "no value", metrics: "go_goroutines\n", wantErr: true},
		{name: "huge line first", metrics: strings.Repeat("x", 2<<20) + "\ngo_goroutines 5\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got int64
			m, err := ParseMetrics(strings.NewReader(tc.metrics))
			if err == nil {
				got, err = m.Count("go_goroutines")
			}
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestMetricsSample(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# TYPE kip_requests_total counter
kip_requests_total{code="200",verb="get"} 3
kip_requests_total{code="403",verb="get"} 2
kip_requests_total{code="200",verb="list"} 5
# TYPE kip_latency_seconds histogram
kip_latency_seconds_bucket{le="+Inf"} 4
kip_latency_seconds_sum 1
kip_latency_seconds_count 4
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kip_requests_total", nil, 10},
		{"kip_requests_total", map[string]string{"code": "200"}, 8},
		{"kip_requests_total", map[string]string{"code": "200", "verb": "get"}, 3},
		{"kip_requests_total", map[string]string{"code": "500"}, 0},
		{"kip_latency_seconds_count", nil, 4},
		{"kip_absent_total", nil, 0},
	} {
		if got := m.Sample(tc.name, tc.labels); got != tc.want {
			t.Errorf("Sample(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if !m.Has("kip_requests_total", map[string]string{"code": "403"}) || m.Has("kip_requests_total", map[string]string{"code": "500"}) {
		t.Error("Has does not tell a series from none")
	}
}

// TestDeployedRBAC reads what operators apply: the proxy's ClusterRole and
// the signer's Role, and refuses a name the file does not have.
func TestDeployedRBAC(t *testing.T) {
	cr, err := DeployedClusterRole("kip-proxy")
	if err != nil {
		t.Fatal(err)
	}
	if cr.Kind != "ClusterRole" || len(cr.Rules) == 0 {
		t.Errorf("ClusterRole kip-proxy: %+v", cr)
	}
	r, err := DeployedRole("kip-signer-ca")
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != "Role" || len(r.Rules) == 0 {
		t.Errorf("Role kip-signer-ca: %+v", r)
	}
	if _, err := DeployedRole("kip-proxy"); err == nil {
		t.Error("found a Role kip-proxy, which deploy/rbac.yaml does not have")
	}
}
