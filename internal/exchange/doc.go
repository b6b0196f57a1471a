// Package exchange serves kip's credential exchange: a POST of a
// login.kip.dev/v1alpha1 TokenCredentialRequest carrying a token kip verifies
// itself (an OIDC ID token or a webhook token) is answered with a
// short-lived client certificate signed by kip's own CA, for the identity
// the token proves.
//
// # Where it sits
//
// WithExchange sits in kip's handler chain just outside authentication and
// sends requests for exactly Path there; everything else goes on to be
// authenticated. The exchange is therefore the one resource an
// unauthenticated caller reaches, and the token in the body is its only
// credential: the TLS client certificate and the Authorization header of
// the request are never read here.
//
// # Security model
//
//   - One spelling of one path. Only Path itself, as the client sent it
//     (r.URL.EscapedPath), reaches the exchange; a trailing slash, a
//     sub-path, a dot segment or a percent-encoded variant goes on to
//     authentication like any other request. A query string is ignored.
//   - A certificate is issued only for a token the authenticator accepted
//     (true with no error and a named user) and only for that user. The
//     user is passed to the Issuer without system:authenticated, which kip
//     adds back when it authenticates the certificate, and without the
//     token's credential-id extra, because the certificate is a different
//     credential. The authenticators refuse reserved system: names; the
//     exchange does not second-guess an operator's allow list.
//   - Impersonate-* headers are refused with 400. An unauthenticated caller
//     has no one to impersonate from, and ignoring the headers would hand a
//     `kubectl --as` user a certificate for someone other than the one they
//     asked for.
//   - Nothing is said about why a token failed. A refused token, and an
//     authenticator that could not decide (an identity provider that is
//     down), both answer 201 with status.message "authentication failed"
//     and no credential, as kube-apiserver's TokenReview does; the reason
//     goes to the log, at V(2) for a refusal, at info for an error.
//   - Input is checked before the token, so a malformed request never costs
//     an identity provider round trip. The body is capped at MaxBodyBytes,
//     decoded strictly (unknown and duplicate fields are refused, so no two
//     parsers can read a different token out of one body), and must be a
//     v1alpha1 TokenCredentialRequest. A CSR must be one PEM CERTIFICATE
//     REQUEST whose signature verifies (proof that the caller holds the
//     key) and whose key is ECDSA P-256 or P-384, Ed25519, or RSA of 2048
//     to 8192 bits. Its subject and extensions are ignored: the identity
//     comes from the token alone.
//   - The token is never echoed: spec.token is cleared in the answer, and a
//     status the caller sent is replaced, never returned. Every answer is
//     Cache-Control: no-store.
//   - Guessing is rate limited per client address. Each token check takes
//     one unit from the address's failure budget before it starts and gives
//     it back unless the token failed, so concurrent requests cannot run
//     more checks than the budget holds. Successes and malformed input cost
//     nothing, and neither does a token kip had no outbound review slot to
//     check (429 with Retry-After: 1; the client tries again). An empty
//     budget answers 429 with Retry-After until it refills. The address is the connection's RemoteAddr, never
//     X-Forwarded-For, which the caller writes; IPv6 addresses are keyed by
//     their /64, which one client usually holds whole. The table of budgets
//     is a bounded LRU and keeps only addresses that have failed recently,
//     so a flood of addresses costs bounded memory (at the price of
//     evicting the oldest budgets). Behind a load balancer that hides client
//     addresses every client shares one budget: preserve source addresses or
//     raise the burst.
package exchange
