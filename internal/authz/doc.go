// Package authz is kip's authorizer. kip makes exactly two decisions of its
// own: a request without a verb is refused, and a caller's own impersonation
// (kubectl --as) is checked by a SubjectAccessReview against the upstream, as
// that caller. Every other decision belongs to the upstream, which sees the
// impersonated user and applies its own RBAC.
package authz
