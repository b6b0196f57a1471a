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
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/kip-proxy/kip/internal/identity"
)

// certCacheTTL bounds how long a verified client certificate chain is
// reused without verifying it again.
const certCacheTTL = time.Minute

// Config says which credentials kip accepts.
type Config struct {
	// ClientCA verifies client certificates. Nil disables certificates.
	ClientCA dynamiccertificates.CAContentProvider
	// TokenReview checks bearer tokens against the upstream. Nil disables
	// bearer tokens.
	TokenReview authenticationv1client.AuthenticationV1Interface
	// TokenCacheTTL is how long a TokenReview answer is reused. Short, so a
	// revoked token stops working soon.
	TokenCacheTTL time.Duration
	// TokenReviewTimeout bounds one TokenReview call.
	TokenReviewTimeout time.Duration
}

// New returns kip's request authenticator. Callers that none of its parts
// accept get an error, which the chain turns into 401: there is no anonymous
// fallback.
func New(cfg Config) (authenticator.Request, error) {
	var parts []authenticator.Request
	if cfg.ClientCA != nil {
		// kip itself vouches for certificate users, so it adds
		// system:authenticated the way kube-apiserver does.
		certs := newVerifiedCertificates(
			x509.NewDynamic(cfg.ClientCA.VerifyOptions, x509.CommonNameUserConversion), cfg.ClientCA, certCacheTTL)
		parts = append(parts, group.NewAuthenticatedGroupAdder(certs))
	}
	if cfg.TokenReview != nil {
		tokens, err := upstreamTokens(cfg)
		if err != nil {
			return nil, err
		}
		// Upstream-verified users keep the groups the upstream gave them,
		// so the group adder is not applied to tokens.
		parts = append(parts, bearertoken.New(tokens), websocket.NewProtocolAuthenticator(tokens))
	}
	if len(parts) == 0 {
		return nil, errors.New("no authentication method is configured: give a client CA or allow TokenReview")
	}
	return union.New(parts...), nil
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
	cached := cache.New(review, false, cfg.TokenCacheTTL, cfg.TokenCacheTTL)
	return identity.UpstreamVerified(cached), nil
}

func noMetrics() webhook.AuthenticatorMetrics {
	return webhook.AuthenticatorMetrics{
		RecordRequestTotal:   func(context.Context, string) {},
		RecordRequestLatency: func(context.Context, string, float64) {},
	}
}
