package tokenauth

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/token/cache"
	webhookutil "k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/metrics"
)

// newWebhookAuthenticator checks tokens with the TokenReview webhook named
// by a kubeconfig file, in the format kube-apiserver's
// --authentication-token-webhook-config-file takes, and remembers answers
// for cacheTTL. Failures are not cached, so a webhook hiccup does not lock
// a user out. Each call takes a slot of limits' outbound reviews first,
// inside the cache, so an answer from the cache takes none.
func newWebhookAuthenticator(kubeconfig string, cacheTTL time.Duration, limits *authlimit.Limits) (authenticator.Token, error) {
	cfg, err := webhookutil.LoadKubeconfig(kubeconfig, nil)
	if err != nil {
		return nil, fmt.Errorf("loading the token webhook configuration %s: %w", kubeconfig, err)
	}
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}
	w, err := webhook.New(cfg, "v1", nil, backoff)
	if err != nil {
		return nil, fmt.Errorf("building the token webhook authenticator from %s: %w", kubeconfig, err)
	}
	return cache.New(limits.LimitReviews(metrics.ReviewWebhook, w), false, cacheTTL, 0), nil
}
