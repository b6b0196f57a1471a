// Package rig starts what the benchmarks measure: a real etcd and
// kube-apiserver (package devstack), kip and `kubectl proxy` in front of it
// as processes of their own, and for the proxy-only workload a trivial
// upstream with kip, a bare reverse proxy and `kubectl proxy` in front of
// that; for the credential exchange, a kip with a signer CA that trusts
// Ory Hydra and a TokenReview webhook in the benchmark process. Each proxy
// runs as its own process so that its CPU time and memory can be read from
// /proc and belong to it alone.
//
// Every listener is on 127.0.0.1.
package rig
