package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// KipConfiguration configures `kip serve`. Every field has a flag of the
// same meaning, named in its comment; a flag given on the command line wins
// over the file. Pointer fields are pointers because their zero value means
// something (0 turns a port off or a limit off) and differs from the default.
type KipConfiguration struct {
	metav1.TypeMeta `json:",inline"`

	// Serving is kip's HTTPS endpoint.
	Serving Serving `json:"serving"`
	// Authentication is how kip verifies callers.
	Authentication Authentication `json:"authentication"`
	// Upstream is the API server kip forwards to.
	Upstream Upstream `json:"upstream"`
	// Clusters makes kip a gateway to many clusters.
	Clusters Clusters `json:"clusters"`
	// Audit is kip's own audit log and webhook.
	Audit Audit `json:"audit"`
	// Observability is the probe server and the access log.
	Observability Observability `json:"observability"`
	// Recording records exec and attach sessions.
	Recording Recording `json:"recording"`
	// Limits bound concurrency and time.
	Limits Limits `json:"limits"`
	// Logging is component-base's logging configuration: format,
	// verbosity, flush frequency.
	Logging logsapi.LoggingConfiguration `json:"logging"`
}

// Serving is kip's HTTPS endpoint.
type Serving struct {
	// BindAddress is --bind-address.
	BindAddress string `json:"bindAddress,omitempty"`
	// Port is --secure-port.
	Port *int32 `json:"port,omitempty"`
	// CertDir is --cert-dir, where a self-signed certificate goes when no
	// certificate file is given.
	CertDir string `json:"certDir,omitempty"`
	// TLSCertFile is --tls-cert-file.
	TLSCertFile string `json:"tlsCertFile,omitempty"`
	// TLSPrivateKeyFile is --tls-private-key-file.
	TLSPrivateKeyFile string `json:"tlsPrivateKeyFile,omitempty"`
	// SNICertKeys is --tls-sni-cert-key.
	SNICertKeys []SNICertKey `json:"sniCertKeys,omitempty"`
	// TLSCipherSuites is --tls-cipher-suites.
	TLSCipherSuites []string `json:"tlsCipherSuites,omitempty"`
	// TLSMinVersion is --tls-min-version, e.g. VersionTLS13.
	TLSMinVersion string `json:"tlsMinVersion,omitempty"`
	// TLSCurvePreferences is --tls-curve-preferences.
	TLSCurvePreferences []int32 `json:"tlsCurvePreferences,omitempty"`
	// HTTP2MaxStreamsPerConnection is --http2-max-streams-per-connection.
	HTTP2MaxStreamsPerConnection *int32 `json:"http2MaxStreamsPerConnection,omitempty"`
	// DisableHTTP2 is --disable-http2-serving.
	DisableHTTP2 bool `json:"disableHTTP2,omitempty"`
	// PermitPortSharing is --permit-port-sharing.
	PermitPortSharing bool `json:"permitPortSharing,omitempty"`
	// PermitAddressSharing is --permit-address-sharing.
	PermitAddressSharing bool `json:"permitAddressSharing,omitempty"`
}

// SNICertKey is one --tls-sni-cert-key: a certificate served for names.
type SNICertKey struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// Names are domain patterns; empty means the certificate's own names.
	Names []string `json:"names,omitempty"`
}

// Authentication is how kip verifies callers.
type Authentication struct {
	// ClientCAFile is --client-ca-file.
	ClientCAFile string `json:"clientCAFile,omitempty"`
	// TrustClusterClientCA is --trust-cluster-client-ca.
	TrustClusterClientCA *bool `json:"trustClusterClientCA,omitempty"`
	// TokenCacheTTL is --token-cache-ttl.
	TokenCacheTTL metav1.Duration `json:"tokenCacheTTL,omitempty"`
	// SignerCA is kip's own CA for short-lived client certificates.
	SignerCA SignerCA `json:"signerCA"`
	// CredentialTTL is --credential-ttl.
	CredentialTTL metav1.Duration `json:"credentialTTL,omitempty"`
	// AuthenticationConfigFile is --authentication-config.
	AuthenticationConfigFile string `json:"authenticationConfigFile,omitempty"`
	// TokenWebhook verifies bearer tokens by TokenReview.
	TokenWebhook TokenWebhook `json:"tokenWebhook"`
	// AllowedReservedGroups is --allowed-reserved-groups.
	AllowedReservedGroups []string `json:"allowedReservedGroups,omitempty"`
	// RevocationConfigMap is --revocation-configmap, namespace/name.
	RevocationConfigMap string `json:"revocationConfigMap,omitempty"`
}

// SignerCA comes from files or from a Secret, never both.
type SignerCA struct {
	// CertFile is --signer-ca-cert-file.
	CertFile string `json:"certFile,omitempty"`
	// KeyFile is --signer-ca-key-file.
	KeyFile string `json:"keyFile,omitempty"`
	// Secret is --signer-ca-secret, namespace/name.
	Secret string `json:"secret,omitempty"`
	// Lease chooses the one replica that rotates a CA kept in Secret.
	Lease SignerCALease `json:"lease"`
}

// SignerCALease is the Lease, in the Secret's namespace, held by the
// replica that rotates the signer CA.
type SignerCALease struct {
	// Name is --signer-ca-lease.
	Name string `json:"name,omitempty"`
	// Identity is --signer-ca-lease-identity; empty means the host name
	// and a random suffix.
	Identity string `json:"identity,omitempty"`
	// LeaseDuration is --signer-ca-lease-duration.
	LeaseDuration metav1.Duration `json:"leaseDuration,omitempty"`
	// RenewDeadline is --signer-ca-lease-renew-deadline.
	RenewDeadline metav1.Duration `json:"renewDeadline,omitempty"`
	// RetryPeriod is --signer-ca-lease-retry-period.
	RetryPeriod metav1.Duration `json:"retryPeriod,omitempty"`
}

// TokenWebhook is a TokenReview webhook in kube-apiserver's format.
type TokenWebhook struct {
	// ConfigFile is --authentication-token-webhook-config-file.
	ConfigFile string `json:"configFile,omitempty"`
	// CacheTTL is --authentication-token-webhook-cache-ttl; 0 turns the
	// cache off.
	CacheTTL *metav1.Duration `json:"cacheTTL,omitempty"`
}

// Upstream is the API server kip forwards to, and kip's own credentials.
type Upstream struct {
	// Kubeconfig is --kubeconfig. Empty means in-cluster: the API server
	// from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, and the
	// ServiceAccount token and CA below.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// InCluster names the files of the in-cluster credentials.
	InCluster InCluster `json:"inCluster"`
}

// Clusters are the sources of a gateway's clusters, each served at
// /clusters/<name>/. Both empty: kip fronts its one upstream.
type Clusters struct {
	// Dir is --clusters-dir.
	Dir string `json:"dir,omitempty"`
	// SecretNamespace is --clusters-secret-namespace.
	SecretNamespace string `json:"secretNamespace,omitempty"`
	// SecretLabel is --clusters-secret-label.
	SecretLabel string `json:"secretLabel,omitempty"`
}

// InCluster names the files the kubelet mounts into kip's pod.
type InCluster struct {
	// TokenFile is --in-cluster-token-file, re-read as the kubelet
	// rotates the projected token.
	TokenFile string `json:"tokenFile,omitempty"`
	// CAFile is --in-cluster-ca-file.
	CAFile string `json:"caFile,omitempty"`
}

// Audit is kip's own audit log and webhook, in the k8s audit policy format.
type Audit struct {
	// PolicyFile is --audit-policy-file; empty turns auditing off.
	PolicyFile string `json:"policyFile,omitempty"`
	// Log is the --audit-log-* backend.
	Log AuditLog `json:"log"`
	// Webhook is the --audit-webhook-* backend.
	Webhook AuditWebhook `json:"webhook"`
}

// AuditLog writes audit events to a file.
type AuditLog struct {
	// Path is --audit-log-path; "-" means standard out.
	Path string `json:"path,omitempty"`
	// MaxAge is --audit-log-maxage, in days.
	MaxAge *int32 `json:"maxAge,omitempty"`
	// MaxBackups is --audit-log-maxbackup.
	MaxBackups *int32 `json:"maxBackups,omitempty"`
	// MaxSize is --audit-log-maxsize, in megabytes.
	MaxSize *int32 `json:"maxSize,omitempty"`
	// Format is --audit-log-format: json or legacy.
	Format string `json:"format,omitempty"`
	// Compress is --audit-log-compress.
	Compress bool `json:"compress,omitempty"`
	// Version is --audit-log-version.
	Version string `json:"version,omitempty"`
	// Batch is --audit-log-mode and --audit-log-batch-*.
	Batch AuditBatch `json:"batch"`
	// Truncate is --audit-log-truncate-*.
	Truncate AuditTruncate `json:"truncate"`
}

// AuditWebhook sends audit events to a webhook.
type AuditWebhook struct {
	// ConfigFile is --audit-webhook-config-file.
	ConfigFile string `json:"configFile,omitempty"`
	// InitialBackoff is --audit-webhook-initial-backoff.
	InitialBackoff metav1.Duration `json:"initialBackoff,omitempty"`
	// Version is --audit-webhook-version.
	Version string `json:"version,omitempty"`
	// Batch is --audit-webhook-mode and --audit-webhook-batch-*.
	Batch AuditBatch `json:"batch"`
	// Truncate is --audit-webhook-truncate-*.
	Truncate AuditTruncate `json:"truncate"`
}

// AuditBatch is how an audit backend buffers events.
type AuditBatch struct {
	// Mode is batch, blocking or blocking-strict.
	Mode          string           `json:"mode,omitempty"`
	BufferSize    *int32           `json:"bufferSize,omitempty"`
	MaxSize       *int32           `json:"maxSize,omitempty"`
	MaxWait       *metav1.Duration `json:"maxWait,omitempty"`
	ThrottleQPS   *float32         `json:"throttleQPS,omitempty"`
	ThrottleBurst *int32           `json:"throttleBurst,omitempty"`
	// ThrottleEnable defaults to true for the webhook, false for the log.
	ThrottleEnable *bool `json:"throttleEnable,omitempty"`
}

// AuditTruncate shortens events and batches that are too large.
type AuditTruncate struct {
	Enabled      bool   `json:"enabled,omitempty"`
	MaxEventSize *int64 `json:"maxEventSize,omitempty"`
	MaxBatchSize *int64 `json:"maxBatchSize,omitempty"`
}

// Observability is the plain-HTTP probe server (/livez, /readyz, /metrics)
// and the access log.
type Observability struct {
	// ProbeBindAddress is --probe-bind-address.
	ProbeBindAddress string `json:"probeBindAddress,omitempty"`
	// ProbePort is --probe-port; 0 turns the probe server off.
	ProbePort *int32 `json:"probePort,omitempty"`
	// Profiling is --profiling: /debug/pprof on the probe port.
	Profiling bool `json:"profiling,omitempty"`
	// AccessLog is --access-log: one log line per request.
	AccessLog bool `json:"accessLog,omitempty"`
}

// Recording records every exec and attach session kip relays as a signed
// asciicast file.
type Recording struct {
	// Dir is --recording-dir; empty turns recording off.
	Dir string `json:"dir,omitempty"`
	// KeyFile is --recording-key-file, the PEM Ed25519 or ECDSA private key
	// that seals recordings; kip generates one at start when empty.
	KeyFile string `json:"keyFile,omitempty"`
	// Required is --recording-required: refuse exec, attach and
	// port-forward with 503 while recordings cannot be kept.
	Required bool `json:"required,omitempty"`
	// Bucket is --recording-bucket, s3://BUCKET[/PREFIX], where finished
	// recordings are uploaded; empty keeps them in Dir.
	Bucket string `json:"bucket,omitempty"`
	// BucketEndpoint is --recording-bucket-endpoint, https://host[:port];
	// empty means AWS S3.
	BucketEndpoint string `json:"bucketEndpoint,omitempty"`
	// BucketRegion is --recording-bucket-region.
	BucketRegion string `json:"bucketRegion,omitempty"`
	// BucketCAFile is --recording-bucket-ca-file, the PEM CAs that verify
	// BucketEndpoint instead of the system's.
	BucketCAFile string `json:"bucketCAFile,omitempty"`
}

// Limits bound concurrency and time.
type Limits struct {
	// MaxRequestsInFlight is --max-requests-inflight; 0 means no limit.
	MaxRequestsInFlight *int32 `json:"maxRequestsInFlight,omitempty"`
	// MaxMutatingRequestsInFlight is --max-mutating-requests-inflight.
	MaxMutatingRequestsInFlight *int32 `json:"maxMutatingRequestsInFlight,omitempty"`
	// RequestTimeout is --request-timeout.
	RequestTimeout metav1.Duration `json:"requestTimeout,omitempty"`
	// ShutdownDelayDuration is --shutdown-delay-duration.
	ShutdownDelayDuration metav1.Duration `json:"shutdownDelayDuration,omitempty"`
	// StreamWriteTimeout is --stream-write-timeout; 0s means no bound.
	StreamWriteTimeout *metav1.Duration `json:"streamWriteTimeout,omitempty"`
	// FailedAuthentication bounds what bearer tokens kip cannot verify
	// may cost.
	FailedAuthentication FailedAuthenticationLimits `json:"failedAuthentication"`
}

// FailedAuthenticationLimits bound failed authentication on the proxy path.
type FailedAuthenticationLimits struct {
	// Burst is --authentication-failure-burst: failures an address may
	// have in a row; 0 turns the budget off.
	Burst *int32 `json:"burst,omitempty"`
	// RefillInterval is --authentication-failure-refill-interval.
	RefillInterval metav1.Duration `json:"refillInterval,omitempty"`
	// RefusedTokenCacheTTL is --refused-token-cache-ttl; 0 turns it off.
	RefusedTokenCacheTTL *metav1.Duration `json:"refusedTokenCacheTTL,omitempty"`
	// MaxOutboundReviews is --max-outbound-authentication-reviews; 0 means
	// no limit.
	MaxOutboundReviews *int32 `json:"maxOutboundReviews,omitempty"`
}
