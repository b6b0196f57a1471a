package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/utils/ptr"
)

// The files the kubelet mounts into every pod that runs as a ServiceAccount.
const (
	DefaultInClusterTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultInClusterCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// DefaultStreamWriteTimeout is how long one write of a watch or another
// streamed answer may wait for its caller to read: a caller that takes
// nothing for a minute has stopped reading.
const DefaultStreamWriteTimeout = time.Minute

// SetDefaults_KipConfiguration fills every field a file leaves out with the
// default of its flag, so that a decoded file is a complete configuration.
func SetDefaults_KipConfiguration(c *KipConfiguration) { //nolint:revive,staticcheck // defaulter-gen finds defaulters by this name.
	setServingDefaults(&c.Serving)
	setAuthenticationDefaults(&c.Authentication)
	setStringDefault(&c.Upstream.InCluster.TokenFile, DefaultInClusterTokenFile)
	setStringDefault(&c.Upstream.InCluster.CAFile, DefaultInClusterCAFile)
	setStringDefault(&c.Clusters.SecretLabel, "kip.dev/cluster")
	setAuditDefaults(&c.Audit)
	setStringDefault(&c.Observability.ProbeBindAddress, "0.0.0.0")
	setPtrDefault(&c.Observability.ProbePort, 8081)
	setPtrDefault(&c.Limits.MaxRequestsInFlight, 400)
	setPtrDefault(&c.Limits.MaxMutatingRequestsInFlight, 200)
	setDurationDefault(&c.Limits.RequestTimeout, time.Minute)
	setPtrDefault(&c.Limits.StreamWriteTimeout, metav1.Duration{Duration: DefaultStreamWriteTimeout})
	setFailedAuthenticationDefaults(&c.Limits.FailedAuthentication)
	logsapi.SetRecommendedLoggingConfiguration(&c.Logging)
}

// setFailedAuthenticationDefaults follows internal/authlimit's defaults,
// which this package cannot import.
func setFailedAuthenticationDefaults(f *FailedAuthenticationLimits) {
	setPtrDefault(&f.Burst, 100)
	setDurationDefault(&f.RefillInterval, 100*time.Millisecond)
	if f.RefusedTokenCacheTTL == nil {
		f.RefusedTokenCacheTTL = &metav1.Duration{Duration: 5 * time.Second}
	}
	setPtrDefault(&f.MaxOutboundReviews, 16)
}

func setServingDefaults(s *Serving) {
	setStringDefault(&s.BindAddress, "0.0.0.0")
	setPtrDefault(&s.Port, 8443)
	setStringDefault(&s.CertDir, "apiserver.local.config/certificates")
	// Many watches from one client share one connection. kube-apiserver
	// allows 100 streams (1000 for aggregated servers); kip takes the
	// larger, so a client opens a tenth of the connections.
	setPtrDefault(&s.HTTP2MaxStreamsPerConnection, 1000)
}

func setAuthenticationDefaults(a *Authentication) {
	setPtrDefault(&a.TrustClusterClientCA, true)
	setDurationDefault(&a.TokenCacheTTL, 10*time.Second)
	setDurationDefault(&a.CredentialTTL, 5*time.Minute)
	// Kubernetes' own controllers elect their leaders with these.
	lease := &a.SignerCA.Lease
	setStringDefault(&lease.Name, "kip-signer-ca")
	setDurationDefault(&lease.LeaseDuration, 15*time.Second)
	setDurationDefault(&lease.RenewDeadline, 10*time.Second)
	setDurationDefault(&lease.RetryPeriod, 2*time.Second)
	if a.TokenWebhook.CacheTTL == nil {
		a.TokenWebhook.CacheTTL = &metav1.Duration{Duration: 2 * time.Minute}
	}
}

// setAuditDefaults follows k8s.io/apiserver's audit options: the log writes
// each event at once, the webhook sends batches.
func setAuditDefaults(a *Audit) {
	l := &a.Log
	setPtrDefault(&l.MaxAge, 366)
	setPtrDefault(&l.MaxBackups, 100)
	setPtrDefault(&l.MaxSize, 100)
	setStringDefault(&l.Format, "json")
	setStringDefault(&l.Version, "audit.k8s.io/v1")
	setBatchDefaults(&l.Batch, AuditBatch{
		Mode: "blocking", BufferSize: ptr.To[int32](10000), MaxSize: ptr.To[int32](1),
		MaxWait: &metav1.Duration{}, ThrottleQPS: ptr.To[float32](0), ThrottleBurst: ptr.To[int32](0), ThrottleEnable: ptr.To(false),
	})
	setTruncateDefaults(&l.Truncate)

	w := &a.Webhook
	setDurationDefault(&w.InitialBackoff, 10*time.Second)
	setStringDefault(&w.Version, "audit.k8s.io/v1")
	setBatchDefaults(&w.Batch, AuditBatch{
		Mode: "batch", BufferSize: ptr.To[int32](10000), MaxSize: ptr.To[int32](400),
		MaxWait: &metav1.Duration{Duration: 30 * time.Second}, ThrottleQPS: ptr.To[float32](10), ThrottleBurst: ptr.To[int32](15), ThrottleEnable: ptr.To(true),
	})
	setTruncateDefaults(&w.Truncate)
}

func setBatchDefaults(b *AuditBatch, d AuditBatch) {
	setStringDefault(&b.Mode, d.Mode)
	setPtrDefault(&b.BufferSize, *d.BufferSize)
	setPtrDefault(&b.MaxSize, *d.MaxSize)
	setPtrDefault(&b.MaxWait, *d.MaxWait)
	setPtrDefault(&b.ThrottleQPS, *d.ThrottleQPS)
	setPtrDefault(&b.ThrottleBurst, *d.ThrottleBurst)
	setPtrDefault(&b.ThrottleEnable, *d.ThrottleEnable)
}

func setTruncateDefaults(t *AuditTruncate) {
	setPtrDefault(&t.MaxEventSize, 100*1024)
	setPtrDefault(&t.MaxBatchSize, 10*1024*1024)
}

func setStringDefault(s *string, d string) {
	if *s == "" {
		*s = d
	}
}

func setPtrDefault[T any](p **T, d T) {
	if *p == nil {
		*p = &d
	}
}

func setDurationDefault(d *metav1.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}
