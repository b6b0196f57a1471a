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
// operator allows by name; so is kip's own upstream username, which would
// carry kip's rights. Extra keys are lower-cased as the upstream reads
// them, and an identity whose keys are empty or collide once lower-cased
// is refused whole.
//
// A Kubernetes ServiceAccount token is never shown to the webhook: it is
// left to the upstream's TokenReview, which alone decides on it.
package tokenauth
