package options

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	netutils "k8s.io/utils/net"

	configv1alpha1 "github.com/kip-proxy/kip/pkg/apis/config/v1alpha1"
)

// validateConfig checks a defaulted file and names each bad field by its
// path in the file. Whether the files it names exist is checked later, by
// Validate, once flags have had their say.
func validateConfig(c *configv1alpha1.KipConfiguration) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateServing(&c.Serving, field.NewPath("serving"))...)
	errs = append(errs, validateAuthentication(&c.Authentication, field.NewPath("authentication"))...)
	errs = append(errs, validateAudit(&c.Audit, field.NewPath("audit"))...)
	errs = append(errs, validateObservability(&c.Observability, field.NewPath("observability"))...)
	errs = append(errs, validateLimits(&c.Limits, field.NewPath("limits"))...)
	return append(errs, logsapi.Validate(&c.Logging, nil, field.NewPath("logging"))...)
}

func validateServing(s *configv1alpha1.Serving, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateIP(s.BindAddress, p.Child("bindAddress"))...)
	errs = append(errs, validatePort(*s.Port, 1, p.Child("port"))...)
	if (s.TLSCertFile == "") != (s.TLSPrivateKeyFile == "") {
		errs = append(errs, field.Required(p.Child("tlsPrivateKeyFile"), "tlsCertFile and tlsPrivateKeyFile go together"))
	}
	for i, k := range s.SNICertKeys {
		if k.CertFile == "" || k.KeyFile == "" {
			errs = append(errs, field.Required(p.Child("sniCertKeys").Index(i), "needs both certFile and keyFile"))
		}
	}
	if _, err := cliflag.TLSCipherSuites(s.TLSCipherSuites); err != nil {
		errs = append(errs, field.Invalid(p.Child("tlsCipherSuites"), s.TLSCipherSuites, err.Error()))
	}
	if _, err := cliflag.TLSVersion(s.TLSMinVersion); err != nil {
		errs = append(errs, field.NotSupported(p.Child("tlsMinVersion"), s.TLSMinVersion, cliflag.TLSPossibleVersions()))
	}
	if n := *s.HTTP2MaxStreamsPerConnection; n < 0 {
		errs = append(errs, field.Invalid(p.Child("http2MaxStreamsPerConnection"), n, "must not be negative"))
	}
	return errs
}

func validateAuthentication(a *configv1alpha1.Authentication, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validatePositive(a.TokenCacheTTL.Duration, p.Child("tokenCacheTTL"))...)
	signer := p.Child("signerCA")
	if (a.SignerCA.CertFile == "") != (a.SignerCA.KeyFile == "") {
		errs = append(errs, field.Required(signer.Child("keyFile"), "certFile and keyFile go together: give both or neither"))
	}
	if a.SignerCA.CertFile != "" && a.SignerCA.Secret != "" {
		errs = append(errs, field.Forbidden(signer.Child("secret"), "the signer CA comes from files or from a Secret, not both"))
	}
	if a.SignerCA.Secret != "" {
		if _, _, err := SplitNamespacedName(a.SignerCA.Secret); err != nil {
			errs = append(errs, field.Invalid(signer.Child("secret"), a.SignerCA.Secret, err.Error()))
		}
	}
	// An exchanged certificate cannot be revoked: its lifetime bounds a leak.
	if ttl := a.CredentialTTL.Duration; ttl < time.Minute || ttl > 24*time.Hour {
		errs = append(errs, field.Invalid(p.Child("credentialTTL"), ttl.String(), "must be between 1m and 24h"))
	}
	if ttl := a.TokenWebhook.CacheTTL.Duration; ttl < 0 {
		errs = append(errs, field.Invalid(p.Child("tokenWebhook", "cacheTTL"), ttl.String(), "must not be negative"))
	}
	for i, g := range a.AllowedReservedGroups {
		path := p.Child("allowedReservedGroups").Index(i)
		switch {
		case !strings.HasPrefix(g, "system:"):
			errs = append(errs, field.Invalid(path, g, "not a system: group; other groups need no permission"))
		case g == "system:masters":
			errs = append(errs, field.Forbidden(path, "system:masters bypasses all authorization; bind cluster-admin to one of your identity provider's groups instead"))
		}
	}
	return errs
}

var (
	auditModes   = sets.New("batch", "blocking", "blocking-strict")
	auditFormats = sets.New("json", "legacy")
)

func validateAudit(a *configv1alpha1.Audit, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	log := p.Child("log")
	for name, v := range map[string]int32{"maxAge": *a.Log.MaxAge, "maxBackups": *a.Log.MaxBackups, "maxSize": *a.Log.MaxSize} {
		if v < 0 {
			errs = append(errs, field.Invalid(log.Child(name), v, "must not be negative"))
		}
	}
	if !auditFormats.Has(a.Log.Format) {
		errs = append(errs, field.NotSupported(log.Child("format"), a.Log.Format, sets.List(auditFormats)))
	}
	errs = append(errs, validateBatch(&a.Log.Batch, log.Child("batch"))...)
	errs = append(errs, validateTruncate(&a.Log.Truncate, log.Child("truncate"))...)
	webhook := p.Child("webhook")
	errs = append(errs, validatePositive(a.Webhook.InitialBackoff.Duration, webhook.Child("initialBackoff"))...)
	errs = append(errs, validateBatch(&a.Webhook.Batch, webhook.Child("batch"))...)
	return append(errs, validateTruncate(&a.Webhook.Truncate, webhook.Child("truncate"))...)
}

func validateBatch(b *configv1alpha1.AuditBatch, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !auditModes.Has(b.Mode) {
		errs = append(errs, field.NotSupported(p.Child("mode"), b.Mode, sets.List(auditModes)))
	}
	for name, v := range map[string]int32{"bufferSize": *b.BufferSize, "maxSize": *b.MaxSize} {
		if v <= 0 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must be positive"))
		}
	}
	if b.MaxWait.Duration < 0 || *b.ThrottleQPS < 0 || *b.ThrottleBurst < 0 {
		errs = append(errs, field.Invalid(p, fmt.Sprintf("maxWait %s, throttleQPS %g, throttleBurst %d", b.MaxWait.Duration, *b.ThrottleQPS, *b.ThrottleBurst), "must not be negative"))
	}
	return errs
}

func validateTruncate(t *configv1alpha1.AuditTruncate, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, v := range map[string]int64{"maxEventSize": *t.MaxEventSize, "maxBatchSize": *t.MaxBatchSize} {
		if v <= 0 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must be positive"))
		}
	}
	return errs
}

func validateObservability(o *configv1alpha1.Observability, p *field.Path) field.ErrorList {
	errs := validatePort(*o.ProbePort, 0, p.Child("probePort"))
	if *o.ProbePort != 0 {
		errs = append(errs, validateIP(o.ProbeBindAddress, p.Child("probeBindAddress"))...)
	}
	return errs
}

func validateLimits(l *configv1alpha1.Limits, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, v := range map[string]int32{"maxRequestsInFlight": *l.MaxRequestsInFlight, "maxMutatingRequestsInFlight": *l.MaxMutatingRequestsInFlight} {
		if v < 0 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must not be negative; 0 means no limit"))
		}
	}
	errs = append(errs, validatePositive(l.RequestTimeout.Duration, p.Child("requestTimeout"))...)
	if d := l.ShutdownDelayDuration.Duration; d < 0 {
		errs = append(errs, field.Invalid(p.Child("shutdownDelayDuration"), d.String(), "must not be negative"))
	}
	if d := l.StreamWriteTimeout.Duration; d != 0 && d < minStreamWriteTimeout {
		errs = append(errs, field.Invalid(p.Child("streamWriteTimeout"), d.String(), "must be 0s (no limit) or at least 1s"))
	}
	return append(errs, validateFailedAuthentication(&l.FailedAuthentication, p.Child("failedAuthentication"))...)
}

func validateFailedAuthentication(f *configv1alpha1.FailedAuthenticationLimits, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if *f.Burst < 0 {
		errs = append(errs, field.Invalid(p.Child("burst"), *f.Burst, "must not be negative; 0 turns the budget off"))
	}
	if *f.Burst > 0 {
		errs = append(errs, validatePositive(f.RefillInterval.Duration, p.Child("refillInterval"))...)
	}
	if d := f.RefusedTokenCacheTTL.Duration; d < 0 || d > time.Minute {
		errs = append(errs, field.Invalid(p.Child("refusedTokenCacheTTL"), d.String(), "must be between 0 and 1m"))
	}
	if *f.MaxOutboundReviews < 0 {
		errs = append(errs, field.Invalid(p.Child("maxOutboundReviews"), *f.MaxOutboundReviews, "must not be negative; 0 means no limit"))
	}
	return errs
}

func validateIP(s string, p *field.Path) field.ErrorList {
	if netutils.ParseIPSloppy(s) == nil {
		return field.ErrorList{field.Invalid(p, s, "not an IP address")}
	}
	return nil
}

func validatePort(port, lowest int32, p *field.Path) field.ErrorList {
	if port < lowest || port > 65535 {
		return field.ErrorList{field.Invalid(p, port, fmt.Sprintf("must be between %d and 65535", lowest))}
	}
	return nil
}

func validatePositive(d time.Duration, p *field.Path) field.ErrorList {
	if d <= 0 {
		return field.ErrorList{field.Invalid(p, d.String(), "must be positive")}
	}
	return nil
}
