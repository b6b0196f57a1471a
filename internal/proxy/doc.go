// Package proxy is kip's last step: an impersonating reverse proxy to the
// upstream API server.
//
// Security model. By the time a request gets here, the handler chain has
// authenticated the caller and consumed every credential and impersonation
// header the caller sent. The proxy then:
//
//   - refuses with 500 if any Authorization or Impersonate-* header (in any
//     letter case) is still present, because that means an earlier step was
//     bypassed or misconfigured, and forwarding it could let a caller choose
//     its own identity;
//   - drops headers a caller could use to spoof identity or origin
//     (X-Remote-*, X-Forwarded-*, Forwarded, X-Real-Ip, a WebSocket bearer
//     subprotocol), while httputil.ReverseProxy drops hop-by-hop headers and
//     every header named in Connection;
//   - only then sets the identity kip authenticated, as Impersonate-* headers
//     sent with kip's own credentials, or, for a token the upstream verified
//     itself, as that very token. Headers are set in Rewrite, after the
//     hop-by-hop removal, so a hostile "Connection: Impersonate-User" cannot
//     strip them and turn the request into one made as kip itself.
//
// Ordinary requests go over an HTTP/2 transport; upgrades (exec, attach,
// port-forward, WebSocket watches) over HTTP/1.1. A connection becomes a raw
// stream only after the upstream answers 101 Switching Protocols, and
// redirects from the upstream are passed back, never followed.
package proxy
