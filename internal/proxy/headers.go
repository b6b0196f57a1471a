package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kip-proxy/kip/internal/headers"
)

const wsBearerProtocolPrefix = "base64url.bearer.authorization.k8s.io."

// upstreamIdentity is what the upstream must be told about a request's user.
type upstreamIdentity struct {
	// User is the identity the request runs as, after any nested
	// impersonation.
	User user.Info
	// Original is the user that authenticated at kip, when it differs from
	// User; nil otherwise.
	Original user.Info
	// Token, when set, is a bearer token the upstream verified itself; it is
	// forwarded unchanged instead of kip's credentials.
	Token string
}

// upstreamHeaders maps an identity to the headers that carry it upstream.
func upstreamHeaders(id upstreamIdentity) (http.Header, error) {
	h := http.Header{}
	if id.Token != "" {
		h.Set("Authorization", "Bearer "+id.Token)
		if id.Original == nil {
			// The upstream knows this caller by its token; impersonating
			// it would only lose bound-token semantics.
			return h, nil
		}
	}
	if err := setImpersonation(h, id.User); err != nil {
		return nil, err
	}
	if id.Original != nil && id.Token == "" {
		// With a passed-through token the upstream audits the real caller
		// itself; otherwise kip must say who it was.
		original, err := json.Marshal(userInfo(id.Original))
		if err != nil {
			return nil, fmt.Errorf("encoding the original user: %w", err)
		}
		h.Add(extraHeader(headers.OriginalUserExtraKey), string(original))
	}
	return h, nil
}

func setImpersonation(h http.Header, u user.Info) error {
	if u.GetName() == "" {
		// An empty Impersonate-User means no impersonation at all: the
		// request would run as kip itself.
		return fmt.Errorf("refusing to forward a request for a user without a name")
	}
	h.Set(authenticationv1.ImpersonateUserHeader, u.GetName())
	for _, g := range u.GetGroups() {
		if forwardsGroup(u, g) {
			h.Add(authenticationv1.ImpersonateGroupHeader, g)
		}
	}
	if uid := u.GetUID(); uid != "" {
		h.Set(authenticationv1.ImpersonateUIDHeader, uid)
	}
	if key, reserved := headers.ReservedExtra(u); reserved {
		// Only kip may name the original caller.
		return fmt.Errorf("refusing to forward the reserved extra %q set by the caller", key)
	}
	for key, values := range u.GetExtra() {
		for _, v := range values {
			h.Add(extraHeader(key), v)
		}
	}
	return nil
}

// forwardsGroup reports whether a group of u is named upstream.
// kube-apiserver adds system:authenticated to every impersonated user but
// the anonymous one, unless the request names system:unauthenticated, and
// it checks kip's right to impersonate each group it is sent. Naming
// system:authenticated would cost it one more authorization check on every
// request and change nothing, so kip names it only where kube-apiserver
// would not add it.
func forwardsGroup(u user.Info, group string) bool {
	if group != user.AllAuthenticated || u.GetName() == user.Anonymous {
		return true
	}
	return slices.Contains(u.GetGroups(), user.AllUnauthenticated)
}

func userInfo(u user.Info) authenticationv1.UserInfo {
	info := authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	if extra := u.GetExtra(); len(extra) > 0 {
		info.Extra = make(map[string]authenticationv1.ExtraValue, len(extra))
		for k, v := range extra {
			info.Extra[k] = v
		}
	}
	return info
}

// extraHeader names the header for an extra key, percent-encoding the key as
// client-go does so that keys such as "example.com/team" survive as header
// names; kube-apiserver decodes them again. It runs for every extra of
// every request, so it builds the name in one allocation.
func extraHeader(key string) string {
	const hex = "0123456789ABCDEF"
	prefix := authenticationv1.ImpersonateUserExtraHeaderPrefix
	b := make([]byte, 0, len(prefix)+3*len(key))
	b = append(b, prefix...)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if isHeaderKeyByte(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	return string(b)
}

// isHeaderKeyByte reports whether c may stand unescaped in a header name:
// an RFC 7230 tchar other than '%', which is the escape itself.
func isHeaderKeyByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&'*+-.^_`|~", c) >= 0
}
