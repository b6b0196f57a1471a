// Package oidcflow obtains OIDC ID tokens for `kip login oidc`: the
// authorization code flow with PKCE and a loopback callback, the device
// flow, refresh, and revocation (RFC 7009) for `kip logout`. Discovery,
// PKCE, the device flow and refresh are go-oidc's and x/oauth2's; this
// package wires them to a terminal user. x/oauth2 has no revocation, so
// that request is written here.
//
// Every ID token it returns was verified against the issuer's keys, for
// this client ID, and (after a browser login) for the nonce it sent, so a
// code injected into the callback cannot log the user in as someone else.
package oidcflow
