package options

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	cliflag "k8s.io/component-base/cli/flag"
	netutils "k8s.io/utils/net"

	configv1alpha1 "github.com/kip-proxy/kip/pkg/apis/config/v1alpha1"
)

// Complete applies --config, when given, under the flags that fs says were
// set on the command line: defaults, then the file, then those flags.
func (o *Serve) Complete(fs *pflag.FlagSet) error {
	if o.ConfigFile == "" {
		return nil
	}
	c, err := LoadConfigFile(o.ConfigFile)
	if err != nil {
		return err
	}
	o.applyConfig(c, fs.Changed)
	return nil
}

// LoadConfigFile reads, defaults and validates a KipConfiguration. Unknown
// and duplicate fields are refused: a misspelt setting that was silently
// ignored could leave a security option at its default.
func LoadConfigFile(path string) (*configv1alpha1.KipConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	c, err := decodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if errs := validateConfig(c); len(errs) > 0 {
		return nil, fmt.Errorf("config file %s is invalid: %w", path, errs.ToAggregate())
	}
	return c, nil
}

// decodeConfig decodes strictly into kip.dev/v1alpha1 and fills defaults.
func decodeConfig(data []byte) (*configv1alpha1.KipConfiguration, error) {
	scheme := runtime.NewScheme()
	if err := configv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	obj, gvk, err := codecs.UniversalDecoder(configv1alpha1.SchemeGroupVersion).Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	c, ok := obj.(*configv1alpha1.KipConfiguration)
	if !ok {
		return nil, fmt.Errorf("%s is not a KipConfiguration", gvk)
	}
	return c, nil
}

// configField is one setting of the file and the flag that overrides it.
type configField struct {
	flag  string
	apply func()
}

// deprecatedFlags maps a flag to its old name, which overrides the file
// too. k8s.io/apiserver still accepts the old audit webhook backoff flag.
var deprecatedFlags = map[string]string{"audit-webhook-initial-backoff": "audit-webhook-batch-initial-backoff"}

// applyConfig copies a defaulted configuration into o, except where the
// flag was set on the command line.
func (o *Serve) applyConfig(c *configv1alpha1.KipConfiguration, changed func(flag string) bool) {
	for _, f := range o.configFields(c) {
		old, hasOld := deprecatedFlags[f.flag]
		if !changed(f.flag) && (!hasOld || !changed(old)) {
			f.apply()
		}
	}
}

// configFields maps every field of the file to its flag. A test checks that
// every flag of `kip serve` except --config has an entry here.
func (o *Serve) configFields(c *configv1alpha1.KipConfiguration) []configField {
	var fields []configField
	for _, part := range [][]configField{
		o.servingFields(&c.Serving), o.authenticationFields(&c.Authentication), o.upstreamFields(&c.Upstream),
		o.clustersFields(&c.Clusters), o.auditFields(&c.Audit), o.observabilityFields(&c.Observability), o.recordingFields(&c.Recording), o.limitFields(&c.Limits), o.loggingFields(c),
	} {
		fields = append(fields, part...)
	}
	return fields
}

func (o *Serve) servingFields(s *configv1alpha1.Serving) []configField {
	ss := o.SecureServing
	return []configField{
		{"bind-address", func() { ss.BindAddress = netutils.ParseIPSloppy(s.BindAddress) }},
		{"secure-port", func() { ss.BindPort = int(*s.Port) }},
		{"cert-dir", func() { ss.ServerCert.CertDirectory = s.CertDir }},
		{"tls-cert-file", func() { ss.ServerCert.CertKey.CertFile = s.TLSCertFile }},
		{"tls-private-key-file", func() { ss.ServerCert.CertKey.KeyFile = s.TLSPrivateKeyFile }},
		{"tls-sni-cert-key", func() { ss.SNICertKeys = sniCertKeys(s.SNICertKeys) }},
		{"tls-cipher-suites", func() { ss.CipherSuites = s.TLSCipherSuites }},
		{"tls-min-version", func() { ss.MinTLSVersion = s.TLSMinVersion }},
		{"tls-curve-preferences", func() { ss.CurvePreferences = s.TLSCurvePreferences }},
		{"http2-max-streams-per-connection", func() { ss.HTTP2MaxStreamsPerConnection = int(*s.HTTP2MaxStreamsPerConnection) }},
		{"disable-http2-serving", func() { ss.DisableHTTP2Serving = s.DisableHTTP2 }},
		{"permit-port-sharing", func() { ss.PermitPortSharing = s.PermitPortSharing }},
		{"permit-address-sharing", func() { ss.PermitAddressSharing = s.PermitAddressSharing }},
	}
}

func sniCertKeys(keys []configv1alpha1.SNICertKey) []cliflag.NamedCertKey {
	var out []cliflag.NamedCertKey
	for _, k := range keys {
		out = append(out, cliflag.NamedCertKey{CertFile: k.CertFile, KeyFile: k.KeyFile, Names: k.Names})
	}
	return out
}

func (o *Serve) authenticationFields(a *configv1alpha1.Authentication) []configField {
	id := o.Credentials
	return []configField{
		{"client-ca-file", func() { o.ClientCAFile = a.ClientCAFile }},
		{"trust-cluster-client-ca", func() { o.TrustClusterClientCA = *a.TrustClusterClientCA }},
		{"token-cache-ttl", func() { o.TokenCacheTTL = a.TokenCacheTTL.Duration }},
		{"signer-ca-cert-file", func() { id.SignerCACertFile = a.SignerCA.CertFile }},
		{"signer-ca-key-file", func() { id.SignerCAKeyFile = a.SignerCA.KeyFile }},
		{"signer-ca-secret", func() { id.SignerCASecret = a.SignerCA.Secret }},
		{"signer-ca-lease", func() { id.SignerLease.Name = a.SignerCA.Lease.Name }},
		{"signer-ca-lease-identity", func() { id.SignerLease.Identity = a.SignerCA.Lease.Identity }},
		{"signer-ca-lease-duration", func() { id.SignerLease.LeaseDuration = a.SignerCA.Lease.LeaseDuration.Duration }},
		{"signer-ca-lease-renew-deadline", func() { id.SignerLease.RenewDeadline = a.SignerCA.Lease.RenewDeadline.Duration }},
		{"signer-ca-lease-retry-period", func() { id.SignerLease.RetryPeriod = a.SignerCA.Lease.RetryPeriod.Duration }},
		{"credential-ttl", func() { id.CredentialTTL = a.CredentialTTL.Duration }},
		{"authentication-config", func() { id.AuthenticationConfigFile = a.AuthenticationConfigFile }},
		{"authentication-token-webhook-config-file", func() { id.WebhookConfigFile = a.TokenWebhook.ConfigFile }},
		{"authentication-token-webhook-cache-ttl", func() { id.WebhookCacheTTL = a.TokenWebhook.CacheTTL.Duration }},
		{"allowed-reserved-groups", func() { id.AllowedReservedGroups = a.AllowedReservedGroups }},
		{"revocation-configmap", func() { id.RevocationConfigMap = a.RevocationConfigMap }},
	}
}

func (o *Serve) upstreamFields(u *configv1alpha1.Upstream) []configField {
	return []configField{
		{"kubeconfig", func() { o.Kubeconfig = u.Kubeconfig }},
		{"in-cluster-token-file", func() { o.InClusterTokenFile = u.InCluster.TokenFile }},
		{"in-cluster-ca-file", func() { o.InClusterCAFile = u.InCluster.CAFile }},
	}
}

func (o *Serve) clustersFields(c *configv1alpha1.Clusters) []configField {
	return []configField{
		{"clusters-dir", func() { o.Clusters.Dir = c.Dir }},
		{"clusters-secret-namespace", func() { o.Clusters.SecretNamespace = c.SecretNamespace }},
		{"clusters-secret-label", func() { o.Clusters.SecretLabel = c.SecretLabel }},
	}
}

func (o *Serve) auditFields(a *configv1alpha1.Audit) []configField {
	l, w := &o.Audit.LogOptions, &o.Audit.WebhookOptions
	fields := []configField{
		{"audit-policy-file", func() { o.Audit.PolicyFile = a.PolicyFile }},
		{"audit-log-path", func() { l.Path = a.Log.Path }},
		{"audit-log-maxage", func() { l.MaxAge = int(*a.Log.MaxAge) }},
		{"audit-log-maxbackup", func() { l.MaxBackups = int(*a.Log.MaxBackups) }},
		{"audit-log-maxsize", func() { l.MaxSize = int(*a.Log.MaxSize) }},
		{"audit-log-format", func() { l.Format = a.Log.Format }},
		{"audit-log-compress", func() { l.Compress = a.Log.Compress }},
		{"audit-log-version", func() { l.GroupVersionString = a.Log.Version }},
		{"audit-webhook-config-file", func() { w.ConfigFile = a.Webhook.ConfigFile }},
		{"audit-webhook-initial-backoff", func() { w.InitialBackoff = a.Webhook.InitialBackoff.Duration }},
		{"audit-webhook-version", func() { w.GroupVersionString = a.Webhook.Version }},
	}
	fields = append(fields, batchFields("audit-log", &a.Log.Batch, &l.BatchOptions.Mode, &l.BatchOptions.BatchConfig.BufferSize,
		&l.BatchOptions.BatchConfig.MaxBatchSize, &l.BatchOptions.BatchConfig.MaxBatchWait, &l.BatchOptions.BatchConfig.ThrottleEnable,
		&l.BatchOptions.BatchConfig.ThrottleQPS, &l.BatchOptions.BatchConfig.ThrottleBurst)...)
	fields = append(fields, batchFields("audit-webhook", &a.Webhook.Batch, &w.BatchOptions.Mode, &w.BatchOptions.BatchConfig.BufferSize,
		&w.BatchOptions.BatchConfig.MaxBatchSize, &w.BatchOptions.BatchConfig.MaxBatchWait, &w.BatchOptions.BatchConfig.ThrottleEnable,
		&w.BatchOptions.BatchConfig.ThrottleQPS, &w.BatchOptions.BatchConfig.ThrottleBurst)...)
	fields = append(fields, truncateFields("audit-log", &a.Log.Truncate, &l.TruncateOptions.Enabled,
		&l.TruncateOptions.TruncateConfig.MaxEventSize, &l.TruncateOptions.TruncateConfig.MaxBatchSize)...)
	return append(fields, truncateFields("audit-webhook", &a.Webhook.Truncate, &w.TruncateOptions.Enabled,
		&w.TruncateOptions.TruncateConfig.MaxEventSize, &w.TruncateOptions.TruncateConfig.MaxBatchSize)...)
}

// batchFields are the --PREFIX-mode and --PREFIX-batch-* flags, which
// k8s.io/apiserver names the same way for the log and the webhook.
func batchFields(prefix string, b *configv1alpha1.AuditBatch, mode *string, bufferSize, maxSize *int,
	maxWait *time.Duration, throttleEnable *bool, throttleQPS *float32, throttleBurst *int) []configField {
	return []configField{
		{prefix + "-mode", func() { *mode = b.Mode }},
		{prefix + "-batch-buffer-size", func() { *bufferSize = int(*b.BufferSize) }},
		{prefix + "-batch-max-size", func() { *maxSize = int(*b.MaxSize) }},
		{prefix + "-batch-max-wait", func() { *maxWait = b.MaxWait.Duration }},
		{prefix + "-batch-throttle-enable", func() { *throttleEnable = *b.ThrottleEnable }},
		{prefix + "-batch-throttle-qps", func() { *throttleQPS = *b.ThrottleQPS }},
		{prefix + "-batch-throttle-burst", func() { *throttleBurst = int(*b.ThrottleBurst) }},
	}
}

func truncateFields(prefix string, t *configv1alpha1.AuditTruncate, enabled *bool, maxEventSize, maxBatchSize *int64) []configField {
	return []configField{
		{prefix + "-truncate-enabled", func() { *enabled = t.Enabled }},
		{prefix + "-truncate-max-event-size", func() { *maxEventSize = *t.MaxEventSize }},
		{prefix + "-truncate-max-batch-size", func() { *maxBatchSize = *t.MaxBatchSize }},
	}
}

func (o *Serve) observabilityFields(ob *configv1alpha1.Observability) []configField {
	return []configField{
		{"probe-bind-address", func() { o.ProbeBindAddress = ob.ProbeBindAddress }},
		{"probe-port", func() { o.ProbePort = int(*ob.ProbePort) }},
		{"profiling", func() { o.Profiling = ob.Profiling }},
		{"access-log", func() { o.Observability.AccessLog = ob.AccessLog }},
	}
}

func (o *Serve) recordingFields(r *configv1alpha1.Recording) []configField {
	return []configField{
		{"recording-dir", func() { o.Recording.Dir = r.Dir }},
		{"recording-key-file", func() { o.Recording.KeyFile = r.KeyFile }},
		{"recording-required", func() { o.Recording.Required = r.Required }},
		{"recording-bucket", func() { o.Recording.Bucket = r.Bucket }},
		{"recording-bucket-endpoint", func() { o.Recording.BucketEndpoint = r.BucketEndpoint }},
		{"recording-bucket-region", func() { o.Recording.BucketRegion = r.BucketRegion }},
		{"recording-bucket-ca-file", func() { o.Recording.BucketCAFile = r.BucketCAFile }},
	}
}

func (o *Serve) limitFields(l *configv1alpha1.Limits) []configField {
	return append(o.FailedAuthentication.fields(&l.FailedAuthentication), []configField{
		{"max-requests-inflight", func() { o.MaxRequestsInFlight = int(*l.MaxRequestsInFlight) }},
		{"max-mutating-requests-inflight", func() { o.MaxMutatingRequestsInFlight = int(*l.MaxMutatingRequestsInFlight) }},
		{"request-timeout", func() { o.RequestTimeout = l.RequestTimeout.Duration }},
		{"shutdown-delay-duration", func() { o.ShutdownDelay = l.ShutdownDelayDuration.Duration }},
		{"stream-write-timeout", func() { o.StreamWriteTimeout = l.StreamWriteTimeout.Duration }},
	}...)
}

// loggingFields are component-base's logging flags, as logsapi.AddFlags
// names them.
func (o *Serve) loggingFields(c *configv1alpha1.KipConfiguration) []configField {
	l, from := o.Logs, &c.Logging
	return []configField{
		{"logging-format", func() { l.Format = from.Format }},
		{"log-flush-frequency", func() { l.FlushFrequency = from.FlushFrequency }},
		{"v", func() { l.Verbosity = from.Verbosity }},
		{"vmodule", func() { l.VModule = from.VModule }},
		{"log-text-split-stream", func() { l.Options.Text.SplitStream = from.Options.Text.SplitStream }},
		{"log-text-info-buffer-size", func() { l.Options.Text.InfoBufferSize = from.Options.Text.InfoBufferSize }},
		{"log-json-split-stream", func() { l.Options.JSON.SplitStream = from.Options.JSON.SplitStream }},
		{"log-json-info-buffer-size", func() { l.Options.JSON.InfoBufferSize = from.Options.JSON.InfoBufferSize }},
	}
}
