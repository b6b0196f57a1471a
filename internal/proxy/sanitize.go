package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kip-proxy/kip/internal/headers"
)

// forbiddenInbound reports the first inbound header that must never reach
// this step: a credential or an impersonation request the chain should have
// consumed. Go canonicalizes most header names, but not all, so the match
// ignores letter case.
func forbiddenInbound(h http.Header) error {
	for name := range h {
		if strings.EqualFold(name, "authorization") || headers.IsImpersonation(name) {
			return fmt.Errorf("header %q reached the proxy step; kip refuses to forward it", name)
		}
	}
	return nil
}

// dropSpoofable removes every spoofable header from the outbound request,
// whatever its letter case, and any WebSocket bearer-token subprotocol the
// authenticator did not already consume.
func dropSpoofable(h http.Header) {
	for name := range h {
		if headers.IsSpoofable(name) {
			delete(h, name)
		}
	}
	dropBearerSubprotocols(h)
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
