package tokenauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/klog/v2"
)

// Claims that mark a JWT as a Kubernetes ServiceAccount token: bound tokens
// (TokenRequest, projected volumes) carry the "kubernetes.io" claim; legacy
// Secret-based tokens carry the issuer "kubernetes/serviceaccount" and
// claims under "kubernetes.io/serviceaccount/".
const (
	boundServiceAccountClaim  = "kubernetes.io"
	legacyServiceAccountIss   = "kubernetes/serviceaccount"
	legacyServiceAccountClaim = "kubernetes.io/serviceaccount/"
)

// notServiceAccountTokens keeps ServiceAccount tokens from tokens (the
// operator's token webhook): such a token is left unrecognised, so it goes
// to the upstream's TokenReview alone, whose answer is final. A webhook is
// a third party that could replay a token it is shown, and a cluster's
// ServiceAccount token is the cluster's to judge. The check reads the
// token's payload without verifying it: a forged token that only looks
// like a ServiceAccount token is refused by the TokenReview, never offered
// to the webhook.
func notServiceAccountTokens(tokens authenticator.Token) authenticator.Token {
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		if isServiceAccountToken(token) {
			klog.V(4).InfoS("Not offering a ServiceAccount token to the token webhook")
			return nil, false, nil
		}
		return tokens.AuthenticateToken(ctx, token)
	})
}

// isServiceAccountToken reports whether token is a compact JWS whose
// unverified payload names it a Kubernetes ServiceAccount token.
func isServiceAccountToken(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	// JWS uses unpadded base64url; padding is tolerated, since treating a
	// token as a ServiceAccount token only keeps it from the webhook.
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return false
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return false
	}
	if _, ok := claims[boundServiceAccountClaim]; ok {
		return true
	}
	var iss string
	if raw, ok := claims["iss"]; ok && json.Unmarshal(raw, &iss) == nil && iss == legacyServiceAccountIss {
		return true
	}
	for name := range claims {
		if strings.HasPrefix(name, legacyServiceAccountClaim) {
			return true
		}
	}
	return false
}
