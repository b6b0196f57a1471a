// Package identity holds kip's end-to-end tests of signing in: a real Ory
// Hydra as the identity provider (zitadel/oidc's, in the test, for the
// device flow, which Hydra v2.3.0 lacks), kip's own signer CA and credential
// exchange, webhook tokens, `kip login` as kubectl's exec plugin, and a
// real kube-apiserver behind kip that sees the user the provider named.
// Its replicas, and the balancer in front of them, are internal/rig/harness
// kips; what stays here is what they are started with.
package identity
