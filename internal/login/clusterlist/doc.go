// Package clusterlist reads, as a signed-in user, the list of the clusters
// a kip gateway lets that user reach (GET
// /apis/login.kip.dev/v1alpha1/clusters), for kip kubeconfig
// --all-clusters. Every name is checked to be a cluster name before it
// is used: it becomes a URL path segment and kubeconfig entry names.
package clusterlist
