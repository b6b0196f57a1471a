// Package metrics defines kip's Prometheus metrics, all named kip_…, and
// the few filters and wrappers that record them.
//
// The metrics are declared here alone, in a Recorder that the server
// builds once, with a registry of its own, and passes to every part that
// records (the chain, the authenticators, the token verifiers, the
// credential exchange). There is no package-level collector and nothing is
// registered as a side effect: the probe port's /metrics serves the
// server's Recorder beside component-base's process-wide registry (Go
// runtime, process). Everything that records on the request path resolves
// its label values ahead of time, so a request costs a map lookup and an
// atomic add, not a label hash and an allocation. Label values that come
// from a request (verb, resource) are bounded before they become labels: a
// caller must not be able to grow kip's metrics by inventing resource names.
// The cluster label is bounded by the gateway's registry instead: a request
// has the cluster routing found registered, and Clusters.Forget drops an
// unregistered cluster's series.
package metrics
