package oidcflow

import (
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signatureAlgorithms are those an OIDC provider may sign ID tokens with.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// CachedIDTokenExpiry checks an ID token read back from kip's cache and
// returns its expiry. The signature is not checked here (that needs the
// provider's keys, and kip verifies the token anyway); what is checked is
// that it is a well-formed JWT for this issuer and client, so that a cache
// entry edited by hand or by mistake is not handed on as if it were.
func CachedIDTokenExpiry(raw, issuer, clientID string) (time.Time, error) {
	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return time.Time{}, fmt.Errorf("the cached ID token is not a JWT: %w", err)
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return time.Time{}, fmt.Errorf("the cached ID token has unreadable claims: %w", err)
	}
	switch {
	case claims.Issuer != issuer:
		return time.Time{}, fmt.Errorf("the cached ID token is from %q, not %q", claims.Issuer, issuer)
	case !slices.Contains([]string(claims.Audience), clientID):
		return time.Time{}, fmt.Errorf("the cached ID token is not for client %q", clientID)
	case claims.Expiry == nil:
		return time.Time{}, errors.New("the cached ID token has no expiry")
	}
	return claims.Expiry.Time(), nil
}
