// Package server runs `kip serve`: a k8s.io/apiserver generic server with
// etcd off, whose handler chain authenticates each caller and hands every
// request, on every path, to the impersonating proxy. Liveness, readiness,
// metrics and profiling live on a separate plain-HTTP probe port so that the
// main port belongs entirely to the upstream.
package server
