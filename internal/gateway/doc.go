// Package gateway is kip's request path when it fronts many clusters.
//
// WithRouting is the outermost filter: it strips /clusters/<name> from the
// path before anything in the chain reads it, so that request info,
// audit, authentication and authorization all see the path the cluster
// will receive, and it records the cluster in the context. Upstreams is
// the last step: the proxy of that cluster, built on first use, and
// replaced or dropped as the registry changes without touching the other
// clusters' connections. Policy says which users may reach a cluster at
// all: allowed groups or a CEL expression over the user. NewClusterList
// serves ListPath, the clusters an authenticated caller may reach, which
// kip kubeconfig --all-clusters reads.
package gateway
