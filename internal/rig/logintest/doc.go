// Package logintest holds fakes for testing kip login without a real
// identity provider or kip server: an OIDC provider on an httptest TLS
// server (discovery, keys, authorize, token with PKCE, refresh and device
// grants) and a kip credential exchange endpoint that checks CSRs and
// issues certificates from a test CA. Both count what they were asked, so
// tests can assert that a cached run made no request at all.
package logintest
