// Package hydra runs a real OIDC provider, Ory Hydra, on loopback for kip's
// tests and `kip dev`, and plays the parts Hydra leaves to others: the
// login and consent app, and the person signing in.
//
// Start writes a configuration with an in-memory database and a fresh
// serving CA, runs `hydra serve all` over TLS (OIDC issuers must be https),
// and waits until both its public and admin endpoints answer. Admin speaks
// the admin API: OAuth2 clients, accepting login and consent challenges,
// rotating the ID-token signing key. SignIn walks an authorization URL the
// way a browser would, answering the login and consent challenges through
// the admin API, and stops at the redirect to the client.
//
// Hydra v2.3.0 has no device authorization grant (RFC 8628): its discovery
// document names no device_authorization_endpoint and its token endpoint
// rejects the device_code grant. It arrived in Hydra v25.4.0, which is not
// published as a version of the github.com/ory/hydra/v2 module; the device
// flow is tested against internal/rig/deviceop instead.
package hydra
