package tokenauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// reservedPrefix marks the names Kubernetes keeps for itself: its
// components, nodes, service accounts and built-in groups.
const reservedPrefix = "system:"

// originalUserExtraKey is where kip records the caller behind a nested
// impersonation; an identity provider must not be able to forge it.
const originalUserExtraKey = "original-user-info.kip.dev"

// errRefused is what a caller learns about a refused identity: no more than
// kube-apiserver says of any token it does not accept.
var errRefused = errors.New("invalid bearer token")

// refuseReserved wraps tokens from an external identity provider. A user
// in the system: namespace, a system: group not in allowed, or a forged
// original-caller extra makes the whole token fail, with a log line naming
// the reason; nothing is silently dropped, since a partially applied
// identity is not the one the provider asserted.
func refuseReserved(source string, tokens authenticator.Token, allowed sets.Set[string]) authenticator.Token {
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		resp, ok, err := tokens.AuthenticateToken(ctx, token)
		if err != nil || !ok {
			return resp, ok, err
		}
		if why := reservedReason(resp.User, allowed); why != "" {
			klog.InfoS("Refused a token whose identity uses a reserved name", "source", source, "user", resp.User.GetName(), "reason", why)
			return nil, false, errRefused
		}
		return resp, true, nil
	})
}

// reservedReason says why u may not come from an external identity
// provider, or returns "" when it may.
func reservedReason(u user.Info, allowed sets.Set[string]) string {
	name := u.GetName()
	switch {
	case name == "":
		return "the username is empty"
	case hasReservedPrefix(name):
		return fmt.Sprintf("the username %q is in the reserved system: namespace", name)
	}
	for _, g := range u.GetGroups() {
		if hasReservedPrefix(g) && !allowed.Has(g) {
			return fmt.Sprintf("the group %q is in the reserved system: namespace and not allowed by --allowed-reserved-groups", g)
		}
	}
	for key := range u.GetExtra() {
		if strings.EqualFold(key, originalUserExtraKey) {
			return fmt.Sprintf("the extra %q is reserved for kip's record of the original caller", key)
		}
	}
	return ""
}

// hasReservedPrefix compares without letter case: RBAC matches exactly, but
// a name that differs from a reserved one only in case is never what an
// identity provider legitimately means.
func hasReservedPrefix(name string) bool {
	return len(name) >= len(reservedPrefix) && strings.EqualFold(name[:len(reservedPrefix)], reservedPrefix)
}
