// Package execcredential speaks kubectl's exec credential protocol
// (client.authentication.k8s.io): it reads what kubectl passes in
// KUBERNETES_EXEC_INFO (notably the cluster's URL and CA when the kubeconfig
// sets provideClusterInfo) and writes the ExecCredential that kubectl reads
// from the plugin's stdout.
package execcredential
