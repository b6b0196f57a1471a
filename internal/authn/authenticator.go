package authn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/websocket"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/cache"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/revocation"
	"github.com/kip-proxy/kip/internal/signer"
)

// certCacheTTL bounds how long a verified client certificate chain is
// reused without verifying it again.
const certCacheTTL = time.Minute

// Config says which credentials kip accepts.
type Config struct {
	// ClientCA verifies client certificates whose identity is their
	// subject alone. Nil disables them.
	ClientCA dynamiccertificates.CAContentProvider
	// SignerCA is kip's own signer; SignerCertificates reads the whole
	// identity (UID and extras too) from the certificates it signed. Both
	// nil when kip issues no certificates.
	SignerCA           dynamiccertificates.CAContentProvider
	SignerCertificates authenticator.Request
	// KipTokens verifies the tokens kip itself vouches for (OIDC, webhook).
	// Their users are impersonated, never passed through. Nil disables them.
	KipTokens authenticator.Token
	// TokenReview checks bearer tokens against the upstream. Nil disables
	// bearer tokens.
	TokenReview authenticationv1client.AuthenticationV1Interface
	// TokenCacheTTL is how long a TokenReview answer is reused. Short, so a
	// revoked token stops working soon.
	TokenCacheTTL time.Duration
	// TokenReviewTimeout bounds one TokenReview call.
	TokenReviewTimeout time.Duration
	// Revocations refuses the certificates the revocation list revokes,
	// checked on every request, after any cached verification. Nil checks
	// none. (kip's own tokens are checked where they are verified, so that
	// the exchange checks them too.)
	Revocations *revocation.Guard
	// Limits bounds what a bearer token kip does not know may cost: its
	// TokenReviews take a slot of the process's outbound reviews, and a
	// token just refused is refused again from memory. Nil bounds nothing.
	Limits *authlimit.Limits
	// Metrics counts every credential checked. Nil counts nothing, for
	// tests that do not look at metrics.
	Metrics *metrics.Recorder
}

// New returns kip's request authenticator. Callers that none of its parts
// accept get an error, which the chain turns into 401: there is no anonymous
// fallback.
func New(cfg Config) (authenticator.Request, error) {
	var parts []authenticator.Request
	// kip's own certificates come first: they carry more of the identity
	// than the subject that the other CAs' authenticator would read.
	if cfg.SignerCertificates != nil && cfg.SignerCA != nil {
		certs := newVerifiedCertificates(cfg.SignerCertificates, cfg.SignerCA, certCacheTTL)
		parts = append(parts, group.NewAuthenticatedGroupAdder(cfg.Metrics.CountAcceptedCertificates(metrics.MethodX509Signer,
			cfg.Revocations.Certificates(certs, signer.Backdate))))
	}
	if cfg.ClientCA != nil {
		// kip itself vouches for certificate users, so it adds
		// system:authenticated the way kube-apiserver does.
		certs := newVerifiedCertificates(
			x509.NewDynamic(cfg.ClientCA.VerifyOptions, x509.CommonNameUserConversion), cfg.ClientCA, certCacheTTL)
		// Other CAs' NotBefore is read at face value.
		parts = append(parts, group.NewAuthenticatedGroupAdder(cfg.Metrics.CountAcceptedCertificates(metrics.MethodX509ClientCA,
			cfg.Revocations.Certificates(certs, 0))))
	}
	tokens, err := bearerTokens(cfg)
	if err != nil {
		return nil, err
	}
	if tokens != nil {
		parts = append(parts, bearertoken.New(tokens), websocket.NewProtocolAuthenticator(tokens))
	}
	if len(parts) == 0 {
		return nil, errors.New("no authentication method is configured: give a client CA or allow TokenReview")
	}
	return cfg.Metrics.CountRefusals(union.New(parts...)), nil
}

// bearerTokens verifies tokens with kip's own verifiers first, then with the
// upstream. A token that kip's verifiers recognise and refuse (an expired ID
// token, a reserved name) ends there: it is never sent on to the upstream
// in a TokenReview. Nil when no token is accepted at all.
func bearerTokens(cfg Config) (authenticator.Token, error) {
	var tokens []authenticator.Token
	if cfg.KipTokens != nil {
		// kip vouches for these users, so it adds system:authenticated the
		// way kube-apiserver does.
		tokens = append(tokens, group.NewTokenGroupAdder(cfg.KipTokens, []string{user.AllAuthenticated}))
	}
	if cfg.TokenReview != nil {
		// Upstream-verified users keep the groups the upstream gave them,
		// so no group is added to them.
		upstream, err := upstreamTokens(cfg)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, upstream)
	}
	if len(tokens) == 0 {
		return nil, nil
	}
	// Remembered for this authenticator alone: in a gateway, a token one
	// cluster refuses may be good at another.
	return cfg.Limits.RememberRefusals(tokenunion.NewFailOnError(tokens...)), nil
}

// upstreamTokens verifies bearer tokens with a TokenReview against the
// upstream and marks the users it accepts for pass-through.
func upstreamTokens(cfg Config) (authenticator.Token, error) {
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}
	review, err := webhook.NewFromInterface(cfg.TokenReview, nil, backoff, cfg.TokenReviewTimeout, noMetrics())
	if err != nil {
		return nil, fmt.Errorf("building the TokenReview authenticator: %w", err)
	}
	// Errors are not cached: an upstream hiccup must not lock a user out.
	// A review takes a slot inside the cache, so a cached answer takes none.
	cached := cache.New(cfg.Limits.LimitReviews(metrics.ReviewTokenReview, review), false, cfg.TokenCacheTTL, cfg.TokenCacheTTL)
	// The upstream is asked last, so its "no" is final.
	return cfg.Metrics.CountTokens(metrics.MethodTokenReview, caller.UpstreamVerified(cached), metrics.ReviewResult, true), nil
}

func noMetrics() webhook.AuthenticatorMetrics {
	return webhook.AuthenticatorMetrics{
		RecordRequestTotal:   func(context.Context, string) {},
		RecordRequestLatency: func(context.Context, string, float64) {},
	}
}
