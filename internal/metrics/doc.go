// Package metrics defines kip's Prometheus metrics, all named kip_…, and
// the few filters and wrappers that record them.
//
// The metrics are declared and registered here alone, the way
// k8s.io/apiserver declares its own: package-level component-base metrics,
// registered once with the legacy registry that the probe port's /metrics
// serves. Everything that records on the request path resolves its label
// values ahead of time, so a request costs a map lookup and an atomic add,
// not a label hash and an allocation. Label values that come from a request
// (verb, resource) are bounded before they become labels: a caller must not
// be able to grow kip's metrics by inventing resource names.
package metrics
