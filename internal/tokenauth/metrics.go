package tokenauth

import (
	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/kip-proxy/kip/internal/metrics"
)

// countedOIDC counts the ID tokens an OIDC verifier decides on. It refuses
// a token it recognises with an error, and passes over one from another
// issuer without one, which is left to the next verifier.
func countedOIDC(rec *metrics.Recorder, tokens authenticator.Token) authenticator.Token {
	return rec.CountTokens(metrics.MethodOIDC, tokens, nil, false)
}

// countedWebhook counts the tokens the webhook decides on. Its "no" is not
// final: the upstream's TokenReview is asked next.
func countedWebhook(rec *metrics.Recorder, tokens authenticator.Token) authenticator.Token {
	return rec.CountTokens(metrics.MethodWebhook, tokens, metrics.ReviewResult, false)
}
