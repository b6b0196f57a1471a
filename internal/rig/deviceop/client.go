package deviceop

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// publicClient is an installed application such as kip login: no secret,
// the device code and refresh token grants, and every scope kip asks for.
type publicClient struct {
	id              string
	idTokenLifetime time.Duration
}

var _ op.Client = (*publicClient)(nil)

func (c *publicClient) GetID() string                    { return c.id }
func (c *publicClient) RedirectURIs() []string           { return nil }
func (c *publicClient) PostLogoutRedirectURIs() []string { return nil }

// ApplicationType native makes the client public: the OP then refuses a
// token request that tries to authenticate it.
func (c *publicClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *publicClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *publicClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *publicClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken}
}

// LoginURL is for the authorization code flow, which this provider does
// not offer.
func (c *publicClient) LoginURL(string) string              { return "" }
func (c *publicClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *publicClient) IDTokenLifetime() time.Duration      { return c.idTokenLifetime }
func (c *publicClient) DevMode() bool                       { return false }
func (c *publicClient) ClockSkew() time.Duration            { return 0 }

func (c *publicClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *publicClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed admits the one scope beyond OIDC's own that kip asks
// for.
func (c *publicClient) IsScopeAllowed(scope string) bool {
	return slices.Contains([]string{ScopeGroups}, scope)
}

// IDTokenUserinfoClaimsAssertion puts email in the ID token although an
// access token is issued too: kube-apiserver and kip read the ID token
// only.
func (c *publicClient) IDTokenUserinfoClaimsAssertion() bool { return true }
