package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	certutil "k8s.io/client-go/util/cert"
	basemetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
)

// exposed scrapes h and returns each family's help text, by name.
func exposed(t *testing.T, h http.Handler) map[string]string {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	help := map[string]string{}
	for name, f := range families {
		help[name] = f.GetHelp()
	}
	return help
}

// TestRecorderExposition pins the name and help text of every kip_ metric
// as /metrics serves them, beside the process-wide Go metrics: dashboards
// and alerts are written against these.
func TestRecorderExposition(t *testing.T) {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("kip-test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := dynamiccertificates.NewStaticCAContent("ca", certPEM)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := dynamiccertificates.NewStaticCertKeyContent("serving", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRecorder(WithClusterOf(clusterOf))
	r.requestsTotal.WithLabelValues("prod", "get", "pods", "200").Inc()
	r.upstreamDuration.WithLabelValues("prod", "get", "pods").Observe(1)
	r.Clusters().SetUp("prod", true)
	r.authenticationAttempts.WithLabelValues(MethodOIDC, resultSuccess).Inc()
	r.ExchangeIssued()
	r.ConfigLoaded(ConfigAuthentication)
	r.Recordings().Recorded("exec")
	r.Recordings().SetStorageUp(StoreDir, true)
	help := exposed(t, r.Handler(Expiry{SignerCA: ca, ClientCA: ca, Serving: serving}))

	want := map[string]string{
		"kip_requests_total":                               "Requests served on kip's secure port, by cluster (\"\" in single-cluster mode and for a request addressed to no cluster), verb, resource (with /subresource) and HTTP status code. Resources the upstream never served successfully are counted as \"other\".",
		"kip_upstream_request_duration_seconds":            "Time from handing a short request to the upstream API server until its response was passed on in full, by cluster, verb and resource. Long-running requests are counted in kip_longrunning_requests instead.",
		"kip_longrunning_requests":                         "Long-running requests in flight to the upstream API server, by cluster and kind: watch, exec, attach, portforward, log, proxy.",
		"kip_authentication_attempts_total":                "Credentials checked, by the method that decided (x509_signer, x509_client_ca, oidc, webhook, tokenreview; x509 for a certificate no trusted CA signed, none for a request without credentials) and result (success, failure, error: the method could not decide).",
		"kip_exchange_certificates_issued_total":           "Client certificates issued by the credential exchange.",
		"kip_exchange_failures_total":                      "Credential exchanges that issued nothing, by reason: authentication, invalid, rate_limited, internal.",
		"kip_config_reloads_total":                         "Attempts to apply a changed configuration file, by config and result (success, failure). A failure keeps the last good configuration.",
		"kip_config_last_reload_success":                   "1 if the last load of the configuration file was applied, 0 if it failed and kip still serves the one before.",
		"kip_signer_ca_expiry_timestamp_seconds":           "When kip's current signer CA expires, in Unix seconds. Absent without a signer CA.",
		"kip_serving_certificate_expiry_timestamp_seconds": "When the certificate kip serves its secure port with expires, in Unix seconds.",
		"kip_client_ca_expiry_timestamp_seconds":           "When the first CA among those whose client certificates kip trusts for their subject (--client-ca-file, the cluster's client CA) expires, in Unix seconds.",
		"kip_cluster_up":                                   "1 if kip's last contact with the cluster succeeded, 0 if it failed, by cluster. Gateway mode only; only registered clusters have a series.",
		"kip_clusters":                                     "Entries in the gateway's cluster sources, by state: registered (served) or refused (a bad or duplicate entry; the log says why). Gateway mode only.",
		"kip_cluster_entries_refused_total":                "Cluster entries refused when a source was read, by source: dir (--clusters-dir) or secrets (--clusters-secret-namespace). Gateway mode only.",
		"kip_recordings_total":                             "Sessions whose recording began, by subresource: exec, attach, portforward.",
		"kip_recording_failures_total":                     "Failures to record a session, by stage: open (not begun; the session ran unrecorded or, with --recording-required, was refused), write (events lost, e.g. a full disk), seal, upload (one failed attempt; the recording stays on disk and is tried again).",
		"kip_recording_storage_up":                         "1 if the recordings' storage worked at its last check, 0 if not, by store: dir (--recording-dir writable with space left) or bucket (--recording-bucket reachable).",
		"kip_recording_uploads_pending":                    "Finished recordings on disk waiting to be uploaded to --recording-bucket.",
		"kip_revocation_refusals_total":                    "Credentials refused because the revocation list revokes them, by the kind of entry: user, uid, group, credential.",
		"kip_revocation_entries":                           "Entries of the revocation list that apply now, as this replica last read it.",
		"kip_longrunning_ended_total":                      "Long-running requests kip ended itself, by reason: write-deadline (a write of a streamed answer, such as a watch or logs -f, took longer than --stream-write-timeout: the caller stopped reading), shutdown (kip began draining; the client resumes on another replica), revoked (the revocation list came to cover the caller), cluster-removed (a gateway stopped serving the cluster), ca-untrusted (kip stopped trusting the CA of the caller's certificate). The last three count exec, attach and port-forward sessions too.",
		"kip_authentication_throttled_total":               "Requests with a bearer token answered 429 instead of being authenticated, by reason: failure_budget (the address had spent its budget of failed authentication; no credential was checked) or reviews_busy (no slot for an outbound review came free in time).",
		"kip_authentication_refused_cache_hits_total":      "Bearer tokens refused from the cache of tokens just refused, without asking the webhook or the upstream again.",
		"kip_authentication_outbound_reviews_total":        "TokenReviews kip sent to authenticate callers, by kind: webhook (the token webhook) or tokenreview (the upstream). Retries within one review are not counted again.",
		"kip_authentication_outbound_reviews_in_flight":    "TokenReviews to authenticate callers in flight now, by kind: webhook or tokenreview. Bounded together by --max-outbound-authentication-reviews.",
		"kip_authentication_outbound_reviews_waiting":      "Callers waiting for a slot to send a TokenReview, because --max-outbound-authentication-reviews are in flight.",
	}
	for name, text := range want {
		if got := help[name]; got != "[ALPHA] "+text {
			t.Errorf("%s: help %q, want %q", name, got, "[ALPHA] "+text)
		}
	}
	for name := range help {
		if _, ok := want[name]; strings.HasPrefix(name, "kip_") && !ok {
			t.Errorf("/metrics serves %s, which this test does not know", name)
		}
	}
	if _, ok := help["go_goroutines"]; !ok {
		t.Error("/metrics lost the process-wide go_goroutines")
	}
}

// TestRecordersAreSeparate checks that two servers in one process count
// into their own series.
func TestRecordersAreSeparate(t *testing.T) {
	a, b := NewRecorder(), NewRecorder()
	a.ExchangeFailed(ExchangeInvalid)
	if got := exposedValue(t, a, `kip_exchange_failures_total{reason="invalid"}`); got != "1" {
		t.Errorf("the recorder that counted reads %s, want 1", got)
	}
	if got := exposedValue(t, b, `kip_exchange_failures_total{reason="invalid"}`); got != "0" {
		t.Errorf("the other recorder reads %s, want 0", got)
	}
}

func exposedValue(t *testing.T, r *Recorder, series string) string {
	t.Helper()
	w := httptest.NewRecorder()
	r.Handler(Expiry{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if value, ok := strings.CutPrefix(line, series+" "); ok {
			return value
		}
	}
	return "absent"
}

// TestNilRecorder checks that a nil Recorder, as unit tests pass it,
// records nothing and wraps nothing.
func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.ExchangeIssued()
	r.ExchangeFailed(ExchangeInternal)
	r.ConfigLoaded(ConfigAuthentication)
	r.ConfigReloaded(ConfigAuthentication, errors.New("broken"))
	r.ConfigInSync(ConfigAuthentication)
	if r.Requests() != nil {
		t.Error("a nil Recorder has request metrics")
	}
	if c := r.Clusters(); c != nil {
		t.Error("a nil Recorder has cluster metrics")
	}
	c := r.Clusters()
	c.SetUp("prod", true)
	c.Forget("prod")
	c.Registered(1, 1)
	c.Refused(SourceDir)
	rec := r.Recordings()
	rec.Recorded("exec")
	rec.Failed(StageUpload)
	rec.SetStorageUp(StoreBucket, false)
	rec.SetUploadsPending(1)
	tokens := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) { return nil, false, nil })
	if _, _, err := r.CountTokens(MethodOIDC, tokens, nil, true).AuthenticateToken(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	if help := exposed(t, r.Handler(Expiry{})); help["go_goroutines"] == "" {
		t.Error("a nil Recorder's /metrics lost the process-wide metrics")
	}
}

// TestRecordingsBoundTheirLabels checks that a subresource kip does not
// record cannot grow kip_recordings_total, and that every failure stage
// reads 0 before it first happens.
func TestRecordingsBoundTheirLabels(t *testing.T) {
	r := NewRecorder()
	r.Recordings().Recorded("exec")
	r.Recordings().Recorded("made-up")
	r.Recordings().Failed(StageUpload)
	for series, want := range map[string]string{
		`kip_recordings_total{subresource="exec"}`:     "1",
		`kip_recordings_total{subresource="other"}`:    "1",
		`kip_recordings_total{subresource="made-up"}`:  "absent",
		`kip_recording_failures_total{stage="open"}`:   "0",
		`kip_recording_failures_total{stage="upload"}`: "1",
		`kip_recording_uploads_pending`:                "0",
	} {
		if got := exposedValue(t, r, series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
}

// TestAuthLimits counts what bounds failed authentication, and a nil
// recorder counts nothing without failing.
func TestAuthLimits(t *testing.T) {
	var none *Recorder
	none.AuthLimits().Throttled(ThrottledFailureBudget)
	none.AuthLimits().ReviewStarted(ReviewWebhook)

	a := NewRecorder().AuthLimits()
	a.Throttled(ThrottledFailureBudget)
	a.Throttled(ThrottledFailureBudget)
	a.Throttled(ThrottledReviewsBusy)
	a.Throttled("invented")
	a.RefusedCacheHit()
	a.ReviewStarted(ReviewWebhook)
	a.ReviewStarted(ReviewTokenReview)
	a.ReviewEnded(ReviewTokenReview)
	a.ReviewStarted("invented")
	a.Waiting(2)
	a.Waiting(-1)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"throttled, failure budget", metricValue(t, a.throttledBudget), 2},
		{"throttled, reviews busy", metricValue(t, a.throttledBusy), 1},
		{"refused cache hits", metricValue(t, a.cacheHits), 1},
		{"webhook reviews", metricValue(t, a.kinds[ReviewWebhook].total), 1},
		{"webhook reviews in flight", metricValue(t, a.kinds[ReviewWebhook].inFlight), 1},
		{"TokenReviews", metricValue(t, a.kinds[ReviewTokenReview].total), 1},
		{"TokenReviews in flight", metricValue(t, a.kinds[ReviewTokenReview].inFlight), 0},
		{"waiting", metricValue(t, a.waiting), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// metricValue reads one counter's or gauge's value.
func metricValue(t *testing.T, m any) float64 {
	t.Helper()
	var v float64
	var err error
	switch m := m.(type) {
	case basemetrics.GaugeMetric: // first: a gauge is a CounterMetric too
		v, err = testutil.GetGaugeMetricValue(m)
	case basemetrics.CounterMetric:
		v, err = testutil.GetCounterMetricValue(m)
	default:
		t.Fatalf("%T is neither a counter nor a gauge", m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}
