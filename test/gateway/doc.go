// Package gateway proves kip's gateway mode end to end: three real
// control planes (each its own etcd, kube-apiserver and client CA) behind
// one `kip serve --clusters-dir`, driven with the real kubectl and
// client-go at https://kip/clusters/<name>. Two of the clusters have a
// test kubelet, so exec, logs, cp and port-forward reach real streaming
// endpoints. The tests cover every verb per cluster, the isolation between
// clusters (client CAs, ServiceAccount tokens, hostile paths, the access
// policy, each checked against the clusters' own audit logs), the live
// registry and one cluster failing while the others carry load.
package gateway
