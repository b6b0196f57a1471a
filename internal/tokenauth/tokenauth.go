package tokenauth

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/metrics"
)

// Config names kip's own token verifiers. Empty file names leave a
// verifier out.
type Config struct {
	// AuthenticationConfigFile is an apiserver.config.k8s.io
	// AuthenticationConfiguration: OIDC issuers, audiences and claim
	// mappings.
	AuthenticationConfigFile string
	// ReloadInterval is how often that file is checked for changes.
	ReloadInterval time.Duration
	// WebhookConfigFile is a kubeconfig naming a TokenReview webhook.
	WebhookConfigFile string
	// WebhookCacheTTL is how long a webhook's answer is reused.
	WebhookCacheTTL time.Duration
	// AllowedReservedGroups are the system: groups an external identity may
	// carry; every other system: name is refused.
	AllowedReservedGroups []string
	// RefusedUsername says why an external identity may not have a
	// username, or returns "" when it may. kip refuses its own upstream
	// username this way: an identity with that name would get kip's
	// rights. Nil turns the check off.
	RefusedUsername func(name string) string
	// Limits bounds the webhook's calls in flight, with every other
	// outbound review of the process. Nil bounds nothing.
	Limits *authlimit.Limits
	// Metrics counts the tokens each verifier decides on and the reloads
	// of the authentication configuration. Nil counts nothing, for tests
	// that do not look at metrics.
	Metrics *metrics.Recorder
}

// Verifier is the union of kip's own token verifiers.
type Verifier struct {
	tokens authenticator.Token
	jwt    *jwtAuthenticator
	cfg    Config
}

// New builds the verifiers. It returns nil and no error when none is
// configured. ctx bounds the background work of the OIDC verifiers.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.AuthenticationConfigFile == "" && cfg.WebhookConfigFile == "" {
		return nil, nil
	}
	rules := identityRules{allowed: sets.New(cfg.AllowedReservedGroups...), refusedName: cfg.RefusedUsername}
	v := &Verifier{cfg: cfg}
	var parts []authenticator.Token
	if cfg.AuthenticationConfigFile != "" {
		j, err := newJWTAuthenticator(ctx, cfg.AuthenticationConfigFile, 30*time.Second, time.Minute)
		if err != nil {
			return nil, err
		}
		v.jwt = j
		parts = append(parts, countedOIDC(cfg.Metrics, refuseReserved("oidc", j, rules)))
		cfg.Metrics.ConfigLoaded(metrics.ConfigAuthentication)
	}
	if cfg.WebhookConfigFile != "" {
		w, err := newWebhookAuthenticator(cfg.WebhookConfigFile, cfg.WebhookCacheTTL, cfg.Limits)
		if err != nil {
			return nil, err
		}
		// ServiceAccount tokens skip the webhook (and its count): the
		// upstream's TokenReview alone decides on them.
		parts = append(parts, notServiceAccountTokens(countedWebhook(cfg.Metrics, refuseReserved("webhook", w, rules))))
	}
	// A token one verifier recognises and refuses is refused: it is not
	// offered to the next, nor to the upstream's TokenReview.
	v.tokens = tokenunion.NewFailOnError(parts...)
	return v, nil
}

// AuthenticateToken verifies a token kip itself vouches for.
func (v *Verifier) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	return v.tokens.AuthenticateToken(ctx, token)
}

// HealthCheck fails while an OIDC issuer's discovery document or keys have
// not been fetched yet.
func (v *Verifier) HealthCheck() error {
	if v.jwt == nil {
		return nil
	}
	if err := v.jwt.HealthCheck(); err != nil {
		return errors.Join(errors.New("OIDC issuers not ready"), err)
	}
	return nil
}

// Run reloads the authentication configuration file when it changes,
// until ctx ends.
func (v *Verifier) Run(ctx context.Context) {
	if v.jwt == nil {
		return
	}
	interval := v.cfg.ReloadInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	v.jwt.watch(ctx, interval, v.cfg.Metrics)
}
