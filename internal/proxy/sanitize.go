package proxy

import (
	"fmt"
	"net/http"
	"strings"
)

// forbiddenInbound reports the first inbound header that must never reach
// this step: a credential or an impersonation request the chain should have
// consumed. Go canonicalizes most header names, but not all, so the match
// ignores letter case.
func forbiddenInbound(h http.Header) error {
	for name := range h {
		if strings.EqualFold(name, "authorization") || IsImpersonationHeader(name) {
			return fmt.Errorf("header %q reached the proxy step; kip refuses to forward it", name)
		}
	}
	return nil
}

// IsImpersonationHeader reports whether a header name asks for
// impersonation, in any letter case: Go canonicalizes most names, but not
// all.
func IsImpersonationHeader(name string) bool {
	return hasPrefixFold(name, "impersonate-")
}

// spoofablePrefixes are header families a caller could use to claim an
// identity or an origin that the upstream, or something behind it, might
// believe: front-proxy identity headers and forwarding headers.
var spoofablePrefixes = []string{"x-remote-", "x-forwarded-"}

var spoofableNames = []string{"forwarded", "x-real-ip"}

// dropSpoofable removes every spoofable header from the outbound request,
// whatever its letter case, and any WebSocket bearer-token subprotocol the
// authenticator did not already consume.
func dropSpoofable(h http.Header) {
	for name := range h {
		if isSpoofable(name) {
			delete(h, name)
		}
	}
	dropBearerSubprotocols(h)
}

// isSpoofable matches without lower-casing the name first: the check runs
// for every header of every request, and a lower-cased copy of each
// canonical name would be an allocation apiece.
func isSpoofable(name string) bool {
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

// hasPrefixFold is strings.HasPrefix ignoring letter case, as
// strings.EqualFold does.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// dropBearerSubprotocols keeps every WebSocket subprotocol except those that
// carry a bearer token: a token must never travel upstream beside kip's own
// credentials.
func dropBearerSubprotocols(h http.Header) {
	for name, values := range h {
		if !strings.EqualFold(name, "Sec-Websocket-Protocol") {
			continue
		}
		var kept []string
		for _, v := range values {
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				if p != "" && !strings.HasPrefix(strings.ToLower(p), wsBearerProtocolPrefix) {
					kept = append(kept, p)
				}
			}
		}
		delete(h, name)
		if len(kept) > 0 {
			h.Set("Sec-Websocket-Protocol", strings.Join(kept, ", "))
		}
	}
}
