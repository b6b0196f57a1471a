// Package revocation is kip's revocation list: entries that say which
// credentials kip no longer accepts, shared by every replica through one
// ConfigMap on kip's home cluster.
//
// An entry names a subject (a user name, a UID, a group, or one
// credential by its credential-id) and a time. From the moment a replica
// sees it, that replica refuses every credential of the subject issued
// before the time: kip's certificates, OIDC ID tokens and webhook tokens,
// at the proxy and at the credential exchange. A credential issued after
// the time is accepted again, so a user the identity provider still vouches
// for can sign in afresh; a time in the future is a lock that refuses even
// fresh credentials until then.
//
// Each entry has an expiry, after which no credential it covers can still
// be valid. Replicas ignore an expired entry, and the next write through
// kip revoke removes it, so the list stays small without anyone pruning it
// by hand.
//
// The list lives in the Kubernetes API, not in kip: kip revoke writes it
// through the upstream, whose RBAC decides who may revoke, and every
// replica follows it with a watch. Until a replica has read it once, that
// replica refuses every credential the list could cover, and its readiness
// says so.
package revocation
