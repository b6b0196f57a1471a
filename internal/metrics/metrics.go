package metrics

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const namespace = "kip"

// The values of the result label of authentication attempts and config
// reloads.
const (
	resultSuccess = "success"
	resultFailure = "failure"
	resultError   = "error"
)

// Recorder holds one server's kip_ metrics, in a registry of its own. The
// server builds it once and hands it to every part that records, so that
// nothing reaches for a package-level collector and two servers in one
// process (tests, kip dev) never count into each other's series.
//
// Every method is a no-op on a nil *Recorder: unit tests that check no
// metric pass none.
type Recorder struct {
	registry metrics.KubeRegistry

	requestsTotal    *metrics.CounterVec
	upstreamDuration *metrics.HistogramVec
	longRunning      *metrics.GaugeVec

	authenticationAttempts  *metrics.CounterVec
	exchangeIssued          *metrics.Counter
	exchangeFailures        *metrics.CounterVec
	configReloads           *metrics.CounterVec
	configLastReloadSuccess *metrics.GaugeVec

	signerCAExpiry, servingCertificateExpiry, clientCAExpiry *metrics.GaugeVec

	clusterUp, clusterEntries *metrics.GaugeVec
	clusterEntriesRefused     *metrics.CounterVec

	// clusterOf names the cluster a request is addressed to; nil in
	// single-cluster mode.
	clusterOf func(context.Context) (string, bool)

	requests    *Requests
	clusters    *Clusters
	recordings  *Recordings
	revocations *Revocations
	authLimits  *AuthLimits

	longRunningEnds *LongRunningEnds
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithClusterOf puts the recorder in gateway mode: clusterOf names the
// cluster each request is addressed to, for the cluster label of the
// request metrics, and reports false for a request addressed to none
// (kip's own endpoints, an unknown cluster). It must name registered
// clusters only, as the gateway's routing does: the label is not bounded
// here, and Clusters.Forget removes a cluster's series when it goes.
//
// Without it, in single-cluster mode, every request has cluster="": the
// label set is the same in both modes, so one dashboard reads either.
func WithClusterOf(clusterOf func(context.Context) (string, bool)) Option {
	return func(r *Recorder) { r.clusterOf = clusterOf }
}

// NewRecorder declares kip's metrics in a new registry. Each call builds
// its collectors afresh: component-base annotates a metric's options when
// it is registered, so options are never shared between registries.
func NewRecorder(opts ...Option) *Recorder {
	r := &Recorder{registry: metrics.NewKubeRegistry()}
	for _, opt := range opts {
		opt(r)
	}
	r.declareRequests()
	r.declareIdentity()
	r.declareExpiry()
	r.declareClusters()
	r.declareRecordings()
	r.declareRevocations()
	r.declareLongRunningEnds()
	r.declareAuthLimits()
	r.requests = newRequests(r.clusterOf, r.requestsTotal, r.upstreamDuration, r.longRunning)
	r.clusters = &Clusters{
		up: r.clusterUp, entries: r.clusterEntries, refused: r.clusterEntriesRefused,
		requests: r.requests,
	}
	return r
}

// Requests is the recorder of what kip's secure port serves; nil for a
// nil Recorder, which kip's chain takes as no request metrics.
func (r *Recorder) Requests() *Requests {
	if r == nil {
		return nil
	}
	return r.requests
}

// Clusters is the recorder of the clusters a gateway serves; nil for a
// nil Recorder, which records nothing.
func (r *Recorder) Clusters() *Clusters {
	if r == nil {
		return nil
	}
	return r.clusters
}

// Handler serves this recorder's metrics together with the process-wide
// ones that k8s.io/component-base keeps (Go runtime, process, and what
// k8s.io/apiserver registers), in one exposition. It sets the expiry
// gauges from e before each scrape, so that a scrape sees the certificates
// of that moment, reloads and rotations included.
func (r *Recorder) Handler(e Expiry) http.Handler {
	gatherers := prometheus.Gatherers{legacyregistry.DefaultGatherer}
	if r != nil {
		gatherers = append(gatherers, r.registry)
	}
	h := promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ProcessStartTime: legacyregistry.GetProcessStart()})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.refreshExpiry(e)
		h.ServeHTTP(w, req)
	})
}

func (r *Recorder) declareRequests() {
	r.requestsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "requests_total",
		Help:           "Requests served on kip's secure port, by cluster (\"\" in single-cluster mode and for a request addressed to no cluster), verb, resource (with /subresource) and HTTP status code. Resources the upstream never served successfully are counted as \"other\".",
		StabilityLevel: metrics.ALPHA,
	}, []string{"cluster", "verb", "resource", "code"})
	r.upstreamDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace,
		Name:      "upstream_request_duration_seconds",
		Help:      "Time from handing a short request to the upstream API server until its response was passed on in full, by cluster, verb and resource. Long-running requests are counted in kip_longrunning_requests instead.",
		// From a cached GET to a slow LIST, up to the default request timeout.
		Buckets:        []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		StabilityLevel: metrics.ALPHA,
	}, []string{"cluster", "verb", "resource"})
	r.longRunning = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "longrunning_requests",
		Help:           "Long-running requests in flight to the upstream API server, by cluster and kind: watch, exec, attach, portforward, log, proxy.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"cluster", "kind"})
	r.registry.MustRegister(r.requestsTotal, r.upstreamDuration, r.longRunning)
}

func (r *Recorder) declareIdentity() {
	r.authenticationAttempts = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "authentication_attempts_total",
		Help:           "Credentials checked, by the method that decided (x509_signer, x509_client_ca, oidc, webhook, tokenreview; x509 for a certificate no trusted CA signed, none for a request without credentials) and result (success, failure, error: the method could not decide).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"method", "result"})
	r.exchangeIssued = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "exchange_certificates_issued_total",
		Help:           "Client certificates issued by the credential exchange.",
		StabilityLevel: metrics.ALPHA,
	})
	r.exchangeFailures = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "exchange_failures_total",
		Help:           "Credential exchanges that issued nothing, by reason: authentication, invalid, rate_limited, internal.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	r.configReloads = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "config_reloads_total",
		Help:           "Attempts to apply a changed configuration file, by config and result (success, failure). A failure keeps the last good configuration.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"config", "result"})
	r.configLastReloadSuccess = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "config_last_reload_success",
		Help:           "1 if the last load of the configuration file was applied, 0 if it failed and kip still serves the one before.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"config"})
	r.registry.MustRegister(r.authenticationAttempts, r.exchangeIssued, r.exchangeFailures, r.configReloads, r.configLastReloadSuccess)
	for _, reason := range []ExchangeFailure{ExchangeAuthentication, ExchangeInvalid, ExchangeRateLimited, ExchangeInternal} {
		r.exchangeFailures.WithLabelValues(string(reason))
	}
}

// declareExpiry declares the expiry gauges. They have no labels; they are
// vectors only so that a source kip is not configured with is absent
// rather than a 1970 date.
func (r *Recorder) declareExpiry() {
	r.signerCAExpiry = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "signer_ca_expiry_timestamp_seconds",
		Help:           "When kip's current signer CA expires, in Unix seconds. Absent without a signer CA.",
		StabilityLevel: metrics.ALPHA,
	}, nil)
	r.servingCertificateExpiry = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "serving_certificate_expiry_timestamp_seconds",
		Help:           "When the certificate kip serves its secure port with expires, in Unix seconds.",
		StabilityLevel: metrics.ALPHA,
	}, nil)
	r.clientCAExpiry = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "client_ca_expiry_timestamp_seconds",
		Help:           "When the first CA among those whose client certificates kip trusts for their subject (--client-ca-file, the cluster's client CA) expires, in Unix seconds.",
		StabilityLevel: metrics.ALPHA,
	}, nil)
	r.registry.MustRegister(r.signerCAExpiry, r.servingCertificateExpiry, r.clientCAExpiry)
}
