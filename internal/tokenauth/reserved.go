package tokenauth

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/headers"
)

// reservedPrefix marks the names Kubernetes keeps for itself: its
// components, nodes, service accounts and built-in groups.
const reservedPrefix = "system:"

// errRefused is what a caller learns about a refused identity: no more than
// kube-apiserver says of any token it does not accept.
var errRefused = errors.New("invalid bearer token")

// identityRules is what kip demands of an identity that an external
// identity provider (OIDC issuer, token webhook) asserts.
type identityRules struct {
	// allowed are the system: groups the operator allows by name.
	allowed sets.Set[string]
	// refusedName says why a username may not be used (kip's own upstream
	// username), or "" when it may; nil turns the check off.
	refusedName func(name string) string
}

// refuseReserved wraps tokens from an external identity provider. A user
// in the system: namespace, a system: group not allowed, kip's own upstream
// username, a forged original-caller extra, or extras that would not reach
// the upstream as asserted make the whole token fail, with a log line
// naming the reason; nothing is silently dropped, since a partially applied
// identity is not the one the provider asserted. Extra keys of an accepted
// identity are lower-cased, as the upstream reads them.
func refuseReserved(source string, tokens authenticator.Token, rules identityRules) authenticator.Token {
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		resp, ok, err := tokens.AuthenticateToken(ctx, token)
		if err != nil || !ok {
			return resp, ok, err
		}
		checked, why := rules.check(resp.User)
		if why != "" {
			klog.InfoS("Refused a token whose identity kip does not accept", "source", source, "user", resp.User.GetName(), "reason", why)
			return nil, false, errRefused
		}
		out := *resp
		out.User = checked
		return &out, true, nil
	})
}

// check returns u as kip forwards it (extra keys lower-cased), or the
// reason why u may not come from an external identity provider.
func (r identityRules) check(u user.Info) (user.Info, string) {
	if why := reservedReason(u, r.allowed); why != "" {
		return nil, why
	}
	if err := headers.CheckUser(u); err != nil {
		return nil, err.Error()
	}
	if r.refusedName != nil {
		if why := r.refusedName(u.GetName()); why != "" {
			return nil, why
		}
	}
	extra, why := lowerExtraKeys(u.GetExtra())
	if why != "" {
		return nil, why
	}
	if extra == nil {
		return u, ""
	}
	return &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: extra}, ""
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
	// kip records the caller behind a nested impersonation there; an
	// identity provider must not be able to forge it.
	if key, reserved := headers.ReservedExtra(u); reserved {
		return fmt.Sprintf("the extra %q is reserved for kip's record of the original caller", key)
	}
	return ""
}

// lowerExtraKeys lower-cases ASCII letters in extra keys, as kube-apiserver
// does when it reads Impersonate-Extra-* header names, so that the key kip
// logs, audits and signs is the one the upstream authorizes. It returns nil
// when no key changes, and a reason when a key is empty or two keys become
// one. Only A-Z change: kip percent-encodes every other byte of a key,
// which the upstream decodes unchanged.
func lowerExtraKeys(extra map[string][]string) (map[string][]string, string) {
	keys := make([]string, 0, len(extra))
	changed := false
	for key := range extra {
		if key == "" {
			return nil, "an extra key is empty"
		}
		keys = append(keys, key)
		changed = changed || asciiLower(key) != key
	}
	sort.Strings(keys) // a stable reason when several keys collide
	out := make(map[string][]string, len(extra))
	from := make(map[string]string, len(extra))
	for _, key := range keys {
		lower := asciiLower(key)
		if first, dup := from[lower]; dup {
			return nil, fmt.Sprintf("the extra keys %q and %q are the same key upstream, which reads extra keys in lower case", first, key)
		}
		from[lower] = key
		out[lower] = extra[key]
	}
	if !changed {
		return nil, ""
	}
	return out, ""
}

// asciiLower lower-cases A-Z only; strings.ToLower would also fold
// non-ASCII letters, which the upstream keeps.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// hasReservedPrefix compares without letter case: RBAC matches exactly, but
// a name that differs from a reserved one only in case is never what an
// identity provider legitimately means.
func hasReservedPrefix(name string) bool {
	return len(name) >= len(reservedPrefix) && strings.EqualFold(name[:len(reservedPrefix)], reservedPrefix)
}
