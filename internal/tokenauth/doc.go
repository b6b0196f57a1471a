// Package tokenauth verifies the bearer tokens that kip itself vouches for:
// OIDC ID tokens, configured by the same AuthenticationConfiguration file
// kube-apiserver takes, and webhook tokens, checked by a TokenReview webhook
// in kube-apiserver's kubeconfig format.
//
// The API server cannot verify these identities itself, so users they prove
// are always impersonated, never passed through. Because the identity
// provider, not the cluster operator, chooses their names, a user or group
// in the reserved system: namespace is refused outright (a groups claim of
// system:masters would otherwise be cluster-admin), except groups the
// operator allows by name.
package tokenauth
