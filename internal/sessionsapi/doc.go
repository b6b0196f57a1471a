// Package sessionsapi serves the sessions.kip.dev API: the recorded
// sessions kip relayed, listed as Session objects and read back as their
// asciicast recordings, from a sessions.Store.
//
// Security model. The handler sits innermost in kip's chain, after
// authentication, impersonation and authorization, and kip's authorizer
// asks the upstream's RBAC (a SubjectAccessReview) about every request of
// this group: kip itself never decides who may read a recording. The
// handler serves exactly what was authorized, reading the resource,
// namespace, name and verb from the request info the authorizer saw, never
// from the path again. A session is shown only in the namespace (and, in a
// gateway, the cluster) it ran in, so a grant in one namespace reads
// nothing of another; an ID that exists elsewhere gets the same 404 as one
// that exists nowhere. Nothing of this group is ever forwarded upstream.
package sessionsapi
