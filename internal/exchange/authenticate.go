package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// errTokenRefused marks a token the authenticator decided against, as
// opposed to an authenticator that could not decide.
var errTokenRefused = errors.New("the token was refused")

// authenticate returns the user a certificate is to be issued for, or an
// error. Only a definite yes with a named user counts as a yes.
func (h *handler) authenticate(ctx context.Context, token string) (user.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, h.tokenTimeout)
	defer cancel()
	if len(h.audiences) > 0 {
		ctx = authenticator.WithAudiences(ctx, h.audiences)
	}
	resp, ok, err := h.tokens.AuthenticateToken(ctx, token)
	switch {
	case err != nil:
		return nil, fmt.Errorf("the token authenticator failed: %w", err)
	case !ok:
		return nil, errTokenRefused
	case resp == nil || resp.User == nil || resp.User.GetName() == "":
		return nil, errors.New("the token authenticator accepted the token but named no user")
	case !h.audienceAccepted(resp.Audiences):
		return nil, fmt.Errorf("%w: it is for audiences %q, not %q", errTokenRefused, resp.Audiences, h.audiences)
	}
	return certificateUser(resp.User), nil
}

// audienceAccepted decides as kip's authentication filter does: an
// authenticator that reports audiences must share one with kip's.
func (h *handler) audienceAccepted(tokenAudiences authenticator.Audiences) bool {
	return len(h.audiences) == 0 || len(tokenAudiences) == 0 || len(h.audiences.Intersect(tokenAudiences)) > 0
}

// certificateUser is the identity to write into a certificate: the
// authenticated user without system:authenticated, which kip adds back
// when it authenticates the certificate, and without the token's
// credential-id, which names the token rather than the certificate. It
// copies everything, so the issuer cannot change an authenticator's cache.
func certificateUser(u user.Info) user.Info {
	groups := slices.DeleteFunc(slices.Clone(u.GetGroups()), func(g string) bool {
		return g == user.AllAuthenticated
	})
	var extra map[string][]string
	for key, values := range u.GetExtra() {
		if key == user.CredentialIDKey {
			continue
		}
		if extra == nil {
			extra = make(map[string][]string, len(u.GetExtra()))
		}
		extra[key] = slices.Clone(values)
	}
	return &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: groups, Extra: extra}
}

// logTokenFailure keeps the reason from the client but not from the
// operator: a refusal is routine (V(2)), an authenticator that failed is
// worth seeing by default.
func logTokenFailure(r *http.Request, err error) {
	if errors.Is(err, errTokenRefused) {
		klog.V(2).InfoS("Credential exchange refused a token", "reason", err.Error(), "remoteAddr", r.RemoteAddr)
		return
	}
	klog.InfoS("Credential exchange could not check a token", "err", err, "remoteAddr", r.RemoteAddr)
}
