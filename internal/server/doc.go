// Package server runs `kip serve`: a k8s.io/apiserver generic server with
// etcd off, whose handler chain authenticates each caller and hands every
// request, on every path, to the impersonating proxy. Liveness, readiness,
// metrics and profiling live on a separate plain-HTTP probe port so that the
// main port belongs entirely to the upstream.
//
// Security is built as values: newSecurity returns the request
// authenticator, the authorizer and the client CAs, each built once, and
// newGenericServer is the one place that hands them to the generic
// server. Construction fails closed: a missing piece, or a generic server
// that ended up with anything but exactly those pieces (replaced by a
// default, wrapped), is an error from New, not a server that runs.
package server
