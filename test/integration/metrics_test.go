package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// metricsKip starts a kip process of its own, so that its /metrics count
// this test's traffic alone, with every source of identity the dashboard
// shows: a signer CA (and so the credential exchange) and an
// AuthenticationConfiguration, whose issuer need not be reachable for it.
func metricsKip(t *testing.T) (kipURL, probeURL string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA("kip-metrics-test-signer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := pki.WriteFiles(dir, "signer", ca.CertPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	authConfig := unreachableIssuerConfig(t, "https://127.0.0.1:1/metrics-test")
	kip := harness.StartKip(t, harness.KipOptions{Stack: stack, Ready: harness.Started, Args: []string{
		"--signer-ca-cert-file=" + certFile, "--signer-ca-key-file=" + keyFile, "--authentication-config=" + authConfig,
	}})
	kipURL, probeURL = kip.URL, kip.ProbeURL
	// Not ready (the issuer is unreachable), but serving once the
	// cluster's client CA has loaded.
	harness.Eventually(t, time.Minute, func() error {
		if _, body := readyzBody(probeURL); !strings.Contains(body, "[+]client-ca ok") {
			return errorf("the cluster's client CA has not loaded yet: %s", body)
		}
		return nil
	})
	return kipURL, probeURL
}

// scrape reads kip's /metrics.
func scrape(t *testing.T, probeURL string) harness.Metrics {
	t.Helper()
	m, err := harness.ScrapeMetrics(context.Background(), http.DefaultClient, probeURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMetrics drives traffic through a kip of its own and reads its
// /metrics: the counters move in step with the requests made, and every
// metric the Grafana dashboard queries is there.
func TestMetrics(t *testing.T) {
	kipURL, probeURL := metricsKip(t)
	ns := createNamespace(t)
	user := harness.UniqueName("metered")
	grant(t, ns, userSubject(user), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}})
	if _, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "metered"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := stack.UserConfigFor(user)
	cfg.Host, cfg.QPS, cfg.Burst = kipURL, -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	t.Run("counters move in step with traffic", func(t *testing.T) {
		// The first success gives the resource a label of its own.
		if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "metered", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		before := scrape(t, probeURL)
		const n = 7
		for range n {
			if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "metered", metav1.GetOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		refused := refusedCallers(t, kipURL)
		for _, c := range refused {
			_, err := c.client.CoreV1().ConfigMaps(ns).Get(ctx, "metered", metav1.GetOptions{})
			if !apierrors.IsUnauthorized(err) {
				t.Fatalf("%s: got %v, want 401", c.name, err)
			}
		}
		after := scrape(t, probeURL)

		checks := []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"kip_requests_total", map[string]string{"verb": "get", "resource": "configmaps", "code": "200"}, n},
			{"kip_requests_total", map[string]string{"verb": "get", "resource": "configmaps", "code": "401"}, float64(len(refused))},
			{"kip_upstream_request_duration_seconds_count", map[string]string{"verb": "get", "resource": "configmaps"}, n},
			{"kip_authentication_attempts_total", map[string]string{"method": "x509_client_ca", "result": "success"}, n},
		}
		for _, c := range refused {
			checks = append(checks, struct {
				name   string
				labels map[string]string
				want   float64
			}{"kip_authentication_attempts_total", map[string]string{"method": c.method, "result": "failure"}, 1})
		}
		for _, c := range checks {
			if got := after.Sample(c.name, c.labels) - before.Sample(c.name, c.labels); got != c.want {
				t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, got, c.want)
			}
		}
	})

	t.Run("long-running requests in flight", func(t *testing.T) {
		watching := map[string]string{"kind": "watch"}
		w, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 10*time.Second, func() error {
			if got := scrape(t, probeURL).Sample("kip_longrunning_requests", watching); got != 1 {
				return errorf("kip_longrunning_requests%v = %v with one watch open, want 1", watching, got)
			}
			return nil
		})
		w.Stop()
		harness.Eventually(t, 10*time.Second, func() error {
			if got := scrape(t, probeURL).Sample("kip_longrunning_requests", watching); got != 0 {
				return errorf("kip_longrunning_requests%v = %v after the watch ended, want 0", watching, got)
			}
			return nil
		})
	})

	t.Run("every metric the dashboard queries exists", func(t *testing.T) {
		families := scrape(t, probeURL)
		var missing []string
		for _, name := range dashboardMetrics(t) {
			if conditionalMetrics[name] {
				continue
			}
			family := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && families[base].GetType() == dto.MetricType_HISTOGRAM {
					family = base
				}
			}
			if f := families[family]; f == nil || len(f.GetMetric()) == 0 {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("the dashboard queries metrics that kip's /metrics does not have: %v", missing)
		}
	})
}

// refusedCaller is a client kip must answer 401, and the method that
// kip_authentication_attempts_total counts its failure under.
type refusedCaller struct {
	name, method string
	client       kubernetes.Interface
}

func refusedCallers(t *testing.T, kipURL string) []refusedCaller {
	t.Helper()
	tls := rest.TLSClientConfig{CAData: stack.KipCAPEM}
	stranger, err := pki.NewCA("not-trusted-by-kip", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := stranger.IssueClient(pki.ClientCertRequest{CommonName: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	strangerTLS := tls
	strangerTLS.CertData, strangerTLS.KeyData = certPEM, keyPEM
	configs := []struct {
		name, method string
		cfg          *rest.Config
	}{
		{"a token nobody issued", "tokenreview", &rest.Config{Host: kipURL, TLSClientConfig: tls, BearerToken: "not-a-token-anyone-issued"}},
		{"a certificate from an untrusted CA", "x509", &rest.Config{Host: kipURL, TLSClientConfig: strangerTLS}},
		{"no credentials", "none", &rest.Config{Host: kipURL, TLSClientConfig: tls}},
	}
	var callers []refusedCaller
	for _, c := range configs {
		c.cfg.QPS, c.cfg.Burst = -1, 0
		callers = append(callers, refusedCaller{name: c.name, method: c.method, client: kubernetes.NewForConfigOrDie(c.cfg)})
	}
	return callers
}

// conditionalMetrics are the dashboard's metrics that only a kip in
// gateway mode (kip_cluster_up) or with recording on
// (kip_recording_storage_up: no store, no state) has series of; this
// test's kip serves one cluster and records nothing.
var conditionalMetrics = map[string]bool{"kip_cluster_up": true, "kip_recording_storage_up": true}

// dashboardMetrics returns every kip_ metric name in the PromQL of the
// dashboard's panels and variables.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "kip.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("deploy/grafana/kip.json: %v", err)
	}
	var queries []string
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			queries = append(queries, target.Expr)
		}
	}
	for _, v := range dashboard.Templating.List {
		queries = append(queries, v.Definition)
	}
	names := map[string]bool{}
	for _, name := range regexp.MustCompile(`kip_[a-z_]+`).FindAllString(strings.Join(queries, "\n"), -1) {
		names[name] = true
	}
	if len(names) == 0 {
		t.Fatal(errors.New("the dashboard queries no kip_ metric"))
	}
	var sorted []string
	for name := range names {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	return sorted
}
