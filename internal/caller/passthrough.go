package caller

import (
	"context"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// upstreamVerifiedUser is a user whose bearer token the upstream API server
// verified itself (a TokenReview said yes). Forwarding that token keeps bound
// token semantics, audiences and UIDs that impersonation would lose.
type upstreamVerifiedUser struct {
	user.Info
	token string
}

// String keeps the token out of any log line that formats the user.
func (u *upstreamVerifiedUser) String() string { return u.GetName() }

// GoString does the same for %#v, which would otherwise print every field.
func (u *upstreamVerifiedUser) GoString() string { return u.GetName() }

// PassthroughToken returns the bearer token to forward unchanged for u, if u
// was verified by the upstream.
func PassthroughToken(u user.Info) (string, bool) {
	v, ok := u.(*upstreamVerifiedUser)
	if !ok || v.token == "" {
		return "", false
	}
	return v.token, true
}

// UpstreamVerified marks every user that auth accepts as verified by the
// upstream, so its token is passed through. Wrap only authenticators whose
// answer comes from the upstream itself (TokenReview).
func UpstreamVerified(auth authenticator.Token) authenticator.Token {
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		resp, ok, err := auth.AuthenticateToken(ctx, token)
		if err != nil || !ok {
			return resp, ok, err
		}
		marked := *resp
		marked.User = &upstreamVerifiedUser{Info: resp.User, token: token}
		return &marked, true, nil
	})
}
