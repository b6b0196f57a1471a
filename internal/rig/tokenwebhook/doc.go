// Package tokenwebhook is a TokenReview webhook in kube-apiserver's format
// on loopback TLS, the identity provider the tests and benchmarks put
// behind kip's --authentication-token-webhook-config-file. It answers each
// token with exactly the user it was told to vouch for, whatever that user
// is, so a test can play a careful provider or a careless one, and counts
// the reviews it is asked for, so a test can tell a review from a cache hit.
package tokenwebhook
