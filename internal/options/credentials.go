package options

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kip-proxy/kip/internal/server"
	"github.com/kip-proxy/kip/internal/tokenauth"
)

// Credentials are the ones kip verifies itself because the upstream cannot:
// certificates from kip's own signer CA, OIDC and webhook tokens, and the
// exchange that turns such a token into such a certificate.
type Credentials struct {
	SignerCACertFile string
	SignerCAKeyFile  string
	// SignerCASecret is namespace/name of the Secret that holds the signer
	// CA in cluster.
	SignerCASecret string
	// CredentialTTL is the lifetime of an exchanged certificate.
	CredentialTTL time.Duration

	AuthenticationConfigFile string
	WebhookConfigFile        string
	WebhookCacheTTL          time.Duration
	AllowedReservedGroups    []string

	// RevocationConfigMap is namespace/name of the revocation list's
	// ConfigMap on the home cluster.
	RevocationConfigMap string

	// SignerLease decides which replica rotates a Secret-held signer CA.
	SignerLease *SignerLease
}

// NewCredentials returns the defaults.
func NewCredentials() *Credentials {
	return &Credentials{CredentialTTL: 5 * time.Minute, WebhookCacheTTL: 2 * time.Minute, SignerLease: NewSignerLease()}
}

// AddFlags registers the credential flags on fs.
func (o *Credentials) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.SignerCACertFile, "signer-ca-cert-file", o.SignerCACertFile,
		"PEM CA certificate with which kip signs short-lived client certificates; reloaded when it changes. Needs --signer-ca-key-file.")
	fs.StringVar(&o.SignerCAKeyFile, "signer-ca-key-file", o.SignerCAKeyFile,
		"PEM private key of --signer-ca-cert-file.")
	fs.StringVar(&o.SignerCASecret, "signer-ca-secret", o.SignerCASecret,
		"namespace/name of a Secret holding the signer CA, created when absent and shared by every replica. Instead of the signer CA files.")
	fs.DurationVar(&o.CredentialTTL, "credential-ttl", o.CredentialTTL,
		"Lifetime of a client certificate issued by the credential exchange.")
	fs.StringVar(&o.AuthenticationConfigFile, "authentication-config", o.AuthenticationConfigFile,
		"AuthenticationConfiguration file (apiserver.config.k8s.io, as kube-apiserver's --authentication-config) naming the OIDC issuers kip trusts; reloaded when it changes.")
	fs.StringVar(&o.WebhookConfigFile, "authentication-token-webhook-config-file", o.WebhookConfigFile,
		"Kubeconfig naming a TokenReview webhook that verifies bearer tokens, in kube-apiserver's format.")
	fs.DurationVar(&o.WebhookCacheTTL, "authentication-token-webhook-cache-ttl", o.WebhookCacheTTL,
		"How long the token webhook's answers are reused.")
	fs.StringSliceVar(&o.AllowedReservedGroups, "allowed-reserved-groups", o.AllowedReservedGroups,
		"system: groups that an OIDC or webhook identity may carry; any other system: user or group is refused.")
	fs.StringVar(&o.RevocationConfigMap, "revocation-configmap", o.RevocationConfigMap,
		"namespace/name of the ConfigMap holding the revocation list that kip revoke writes; every replica follows it and refuses the credentials it revokes. Empty: no revocation list.")
	o.SignerLease.AddFlags(fs)
}

// Validate reports every invalid credential option.
func (o *Credentials) Validate() []error {
	var errs []error
	errs = append(errs, o.validateSigner()...)
	errs = append(errs, o.SignerLease.Validate(o.SignerCASecret)...)
	for flag, path := range map[string]string{
		"--authentication-config":                    o.AuthenticationConfigFile,
		"--authentication-token-webhook-config-file": o.WebhookConfigFile,
	} {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", flag, err))
			}
		}
	}
	if o.RevocationConfigMap != "" {
		if _, _, err := SplitNamespacedName(o.RevocationConfigMap); err != nil {
			errs = append(errs, fmt.Errorf("--revocation-configmap: %w", err))
		}
	}
	if o.WebhookCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("--authentication-token-webhook-cache-ttl must not be negative, not %s", o.WebhookCacheTTL))
	}
	return append(errs, validateAllowedGroups(o.AllowedReservedGroups)...)
}

func (o *Credentials) validateSigner() []error {
	var errs []error
	if (o.SignerCACertFile == "") != (o.SignerCAKeyFile == "") {
		errs = append(errs, errors.New("--signer-ca-cert-file and --signer-ca-key-file go together: give both or neither"))
	}
	if o.SignerCACertFile != "" && o.SignerCASecret != "" {
		errs = append(errs, errors.New("--signer-ca-secret and --signer-ca-cert-file exclude each other: the signer CA comes from files or from a Secret"))
	}
	for _, path := range []string{o.SignerCACertFile, o.SignerCAKeyFile} {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("signer CA: %w", err))
			}
		}
	}
	if o.SignerCASecret != "" {
		if _, _, err := SplitNamespacedName(o.SignerCASecret); err != nil {
			errs = append(errs, fmt.Errorf("--signer-ca-secret: %w", err))
		}
	}
	// An exchanged certificate's lifetime bounds a leaked one that nobody
	// has revoked yet; a day is already generous.
	if o.CredentialTTL < time.Minute || o.CredentialTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--credential-ttl must be between 1m and 24h, not %s", o.CredentialTTL))
	}
	return errs
}

// validateAllowedGroups keeps the exception list to what it is for.
// system:masters bypasses RBAC entirely; an identity provider's group that
// should be cluster-admin gets a ClusterRoleBinding instead.
func validateAllowedGroups(groups []string) []error {
	var errs []error
	for _, g := range groups {
		switch {
		case !strings.HasPrefix(g, "system:"):
			errs = append(errs, fmt.Errorf("--allowed-reserved-groups: %q is not a system: group; other groups need no permission", g))
		case g == "system:masters":
			errs = append(errs, errors.New("--allowed-reserved-groups: system:masters bypasses all authorization and cannot be allowed; bind the cluster-admin ClusterRole to one of your identity provider's groups instead"))
		}
	}
	return errs
}

// config applies the validated options.
func (o *Credentials) config() server.CredentialsConfig {
	cfg := server.CredentialsConfig{
		SignerCACertFile: o.SignerCACertFile,
		SignerCAKeyFile:  o.SignerCAKeyFile,
		CredentialTTL:    o.CredentialTTL,
		Tokens: tokenauth.Config{
			AuthenticationConfigFile: o.AuthenticationConfigFile,
			WebhookConfigFile:        o.WebhookConfigFile,
			WebhookCacheTTL:          o.WebhookCacheTTL,
			AllowedReservedGroups:    o.AllowedReservedGroups,
		},
	}
	if o.SignerCASecret != "" {
		// Validate has already refused a malformed name.
		cfg.SignerCASecret.Namespace, cfg.SignerCASecret.Name, _ = SplitNamespacedName(o.SignerCASecret)
	}
	if o.RevocationConfigMap != "" {
		cfg.Revocations.Namespace, cfg.Revocations.Name, _ = SplitNamespacedName(o.RevocationConfigMap)
	}
	o.SignerLease.ApplyTo(&cfg)
	return cfg
}

// SplitNamespacedName parses namespace/name.
func SplitNamespacedName(s string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q is not namespace/name", s)
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return "", "", fmt.Errorf("namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", "", fmt.Errorf("name %q: %s", name, strings.Join(errs, "; "))
	}
	return namespace, name, nil
}
