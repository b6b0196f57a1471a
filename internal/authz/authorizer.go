package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"

	sessionsv1alpha1 "github.com/kip-proxy/kip/pkg/apis/sessions/v1alpha1"
)

// Config tunes the SubjectAccessReview calls made for nested impersonation.
type Config struct {
	SubjectAccessReview authorizationv1client.AuthorizationV1Interface
	AllowCacheTTL       time.Duration
	DenyCacheTTL        time.Duration
}

// New returns kip's authorizer.
func New(cfg Config) (authorizer.Authorizer, error) {
	if cfg.SubjectAccessReview == nil {
		return nil, errors.New("kip's authorizer needs a SubjectAccessReview client for the upstream")
	}
	upstream, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: cfg.SubjectAccessReview,
		AllowCacheTTL:             cfg.AllowCacheTTL,
		DenyCacheTTL:              cfg.DenyCacheTTL,
		WebhookRetryBackoff:       &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3},
	}.New()
	if err != nil {
		return nil, fmt.Errorf("building the SubjectAccessReview authorizer: %w", err)
	}
	return authorizer.AuthorizerFunc(decide(upstream)), nil
}

// decide refuses verb-less requests, asks the upstream about impersonation
// and about kip's own recorded sessions, and leaves everything else to the
// upstream's own authorization.
func decide(upstream authorizer.Authorizer) func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	return func(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		verb := attrs.GetVerb()
		switch {
		case verb == "":
			// Nothing sensible can be forwarded without a verb; refuse rather
			// than guess.
			return authorizer.DecisionDeny, "kip refuses requests without a verb", nil
		case strings.HasPrefix(verb, "impersonate"):
			// Asked by an impersonation filter, with the caller as the user:
			// only the upstream knows whether the caller may act as another.
			// The prefix also covers the verbs of constrained impersonation
			// (impersonate:user-info, impersonate-on:...), so a switch of
			// filter could never turn them into a blanket allow.
			return upstream.Authorize(ctx, attrs)
		case attrs.GetAPIGroup() == sessionsv1alpha1.GroupName:
			// kip serves recorded sessions itself, so no upstream sees
			// the request afterwards to apply its RBAC: ask it now, for
			// the user the request runs as, about sessions and
			// sessions/recording in the session's namespace.
			return upstream.Authorize(ctx, attrs)
		default:
			return authorizer.DecisionAllow, "", nil
		}
	}
}
