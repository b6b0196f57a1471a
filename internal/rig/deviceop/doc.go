// Package deviceop runs a real OpenID provider with the device
// authorization grant (RFC 8628) in the test's process, for kip's tests of
// `kip login --flow device`: Hydra v2.3.0, the rig's other provider, has
// no device flow.
//
// The protocol is zitadel/oidc's OpenID provider (pkg/op): discovery, the
// device authorization and token endpoints, the polling answers
// (authorization_pending, access_denied, expired_token), ID token signing,
// refresh with rotation, revocation. What that library leaves to its user
// is here and kept small: an in-memory storage, one public client, a few
// users with email and groups, and the verification pages a person opens.
// Those pages are plain HTML forms, so Approve and Deny play the person
// the way a browser submits them: open the verification URL, enter the
// user code, sign in, and press Allow or Deny.
//
// The provider listens on loopback over HTTPS with a CA of its own (OIDC
// issuers must be https).
package deviceop
