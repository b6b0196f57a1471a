// Package authz is kip's authorizer. kip makes exactly three decisions of
// its own: a request without a verb is refused; a caller's own
// impersonation (kubectl --as) is checked by a SubjectAccessReview against
// the upstream, as that caller; and a request of kip's own sessions.kip.dev
// API, which kip answers without the upstream, is checked by a
// SubjectAccessReview for the user it runs as. Every other decision belongs
// to the upstream, which sees the impersonated user and applies its own
// RBAC.
package authz
