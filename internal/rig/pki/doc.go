// Package pki issues the certificate authorities, client certificates and
// serving certificates that kip's test rig and `kip dev` need.
//
// It is deliberately small: ECDSA P-256 keys, PEM in and out, and just enough
// control over validity and extended key usage for tests to build the hostile
// cases (expired, not yet valid, server-only) next to the friendly ones.
// It is not kip's production signer; that lives with credential issuance.
package pki
