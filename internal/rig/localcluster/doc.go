// Package localcluster runs a throwaway but real Kubernetes control plane
// (etcd and kube-apiserver, nothing else) on free loopback ports, for kip's
// integration tests and for `kip dev`.
//
// The API server trusts a client CA that the caller can sign with
// (Cluster.ClientCA), so a test can mint any user it likes, and it publishes
// that CA in ConfigMap kube-system/extension-apiserver-authentication just as
// a managed cluster does, which is where kip learns whom to trust. There is
// no kube-controller-manager: namespaces get no default ServiceAccount and
// the aggregated roles (edit, view, admin) stay empty.
//
// Every file the cluster needs, its process logs included, lives in one
// directory that Stop removes unless asked to keep it.
package localcluster
