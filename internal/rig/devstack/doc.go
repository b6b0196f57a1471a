// Package devstack runs kip in front of a throwaway real control plane: the
// local etcd and kube-apiserver of package localcluster, kip's own RBAC on
// it, and `kip serve` in this process. `kip dev` and the integration tests
// share it, so what a developer tries is what the tests prove.
package devstack
