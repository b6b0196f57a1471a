package metrics

import (
	"sync"

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

var (
	requests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "requests_total",
		Help:           "Requests served on kip's secure port, by verb, resource (with /subresource) and HTTP status code. Resources the upstream never served successfully are counted as \"other\".",
		StabilityLevel: metrics.ALPHA,
	}, []string{"verb", "resource", "code"})

	upstreamDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace,
		Name:      "upstream_request_duration_seconds",
		Help:      "Time from handing a short request to the upstream API server until its response was passed on in full, by verb and resource. Long-running requests are counted in kip_longrunning_requests instead.",
		// From a cached GET to a slow LIST, up to the default request timeout.
		Buckets:        []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		StabilityLevel: metrics.ALPHA,
	}, []string{"verb", "resource"})

	longRunning = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "longrunning_requests",
		Help:           "Long-running requests in flight to the upstream API server, by kind: watch, exec, attach, portforward, log, proxy.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})

	authenticationAttempts = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "authentication_attempts_total",
		Help:           "Credentials checked, by the method that decided (x509_signer, x509_client_ca, oidc, webhook, tokenreview; x509 for a certificate no trusted CA signed, none for a request without credentials) and result (success, failure, error: the method could not decide).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"method", "result"})

	exchangeIssued = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "exchange_certificates_issued_total",
		Help:           "Client certificates issued by the credential exchange.",
		StabilityLevel: metrics.ALPHA,
	})

	exchangeFailures = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "exchange_failures_total",
		Help:           "Credential exchanges that issued nothing, by reason: authentication, invalid, rate_limited, internal.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})

	configReloads = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "config_reloads_total",
		Help:           "Attempts to apply a changed configuration file, by config and result (success, failure). A failure keeps the last good configuration.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"config", "result"})

	configLastReloadSuccess = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "config_last_reload_success",
		Help:           "1 if the last load of the configuration file was applied, 0 if it failed and kip still serves the one before.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"config"})

	// The expiry gauges have no labels; they are vectors only so that a
	// source kip is not configured with is absent rather than a 1970 date.
	signerCAExpiry = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "signer_ca_expiry_timestamp_seconds",
		Help:           "When kip's current signer CA expires, in Unix seconds. Absent without a signer CA.",
		StabilityLevel: metrics.ALPHA,
	}, nil)

	servingCertificateExpiry = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "serving_certificate_expiry_timestamp_seconds",
		Help:           "When the certificate kip serves its secure port with expires, in Unix seconds.",
		StabilityLevel: metrics.ALPHA,
	}, nil)

	clientCAExpiry = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "client_ca_expiry_timestamp_seconds",
		Help:           "When the first CA among those whose client certificates kip trusts for their subject (--client-ca-file, the cluster's client CA) expires, in Unix seconds.",
		StabilityLevel: metrics.ALPHA,
	}, nil)
)

var registerOnce sync.Once

// Register registers kip's metrics with the legacy registry. It is safe to
// call more than once. Until it has run, every metric is a no-op, so
// everything that resolves label values ahead of time calls it first.
func Register() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(
			requests, upstreamDuration, longRunning, authenticationAttempts,
			exchangeIssued, exchangeFailures, configReloads, configLastReloadSuccess,
			signerCAExpiry, servingCertificateExpiry, clientCAExpiry,
		)
		// Known label values start at zero, so that a rate is defined
		// before the first event and a dashboard finds every series.
		for _, reason := range []ExchangeFailure{ExchangeAuthentication, ExchangeInvalid, ExchangeRateLimited, ExchangeInternal} {
			exchangeFailures.WithLabelValues(string(reason))
		}
		for _, k := range longRunningKinds {
			longRunning.WithLabelValues(k)
		}
	})
}
