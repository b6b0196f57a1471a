package headers

import (
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
)

// OriginalUserExtraKey names the extra that carries the caller who used
// nested impersonation (kubectl --as), so the upstream's audit log shows who
// really acted. Its value is the JSON of an authentication/v1 UserInfo.
const OriginalUserExtraKey = "original-user-info.kip.dev"

// IsImpersonation reports whether a header name asks for impersonation, in
// any letter case: Go canonicalizes most names, but not all, and a name it
// leaves alone still reaches the upstream.
func IsImpersonation(name string) bool {
	return hasPrefixFold(name, "impersonate-")
}

// FindImpersonation returns the first header of h that asks for
// impersonation.
func FindImpersonation(h http.Header) (string, bool) {
	for name := range h {
		if IsImpersonation(name) {
			return name, true
		}
	}
	return "", false
}

// spoofablePrefixes are header families a caller could use to claim an
// identity or an origin that the upstream, or something behind it, might
// believe: front-proxy identity headers and forwarding headers.
var spoofablePrefixes = []string{"x-remote-", "x-forwarded-"}

var spoofableNames = []string{"forwarded", "x-real-ip"}

// IsSpoofable reports whether a caller could use the header name to claim
// an identity or an origin. It matches without lower-casing the name first:
// the check runs for every header of every request, and a lower-cased copy
// of each canonical name would be an allocation apiece.
func IsSpoofable(name string) bool {
	for _, n := range spoofableNames {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	for _, p := range spoofablePrefixes {
		if hasPrefixFold(name, p) {
			return true
		}
	}
	return false
}

// ReservedExtra returns the extra key of u, in whatever letter case, that
// names kip's record of the original caller. Only kip may set it: a caller
// who could (kubectl --as-user-extra, an OIDC claim, a webhook) would forge
// the upstream's audit record.
func ReservedExtra(u user.Info) (string, bool) {
	for key := range u.GetExtra() {
		if strings.EqualFold(key, OriginalUserExtraKey) {
			return key, true
		}
	}
	return "", false
}

// hasPrefixFold is strings.HasPrefix ignoring letter case, as
// strings.EqualFold does.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
