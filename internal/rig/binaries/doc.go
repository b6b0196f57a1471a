// Package binaries builds, once, the pinned etcd, kube-apiserver, kubectl and
// Ory Hydra that kip's tests and `kip dev` run, and finds them on later runs.
//
// Each binary is built from its own tools module under hack/tools (their
// dependency graphs clash in a shared go.mod) and cached under a folder named
// after its version, so bumping a version builds afresh and nothing else does.
// A build writes to a temporary name and renames, so a killed build never
// leaves a half-written binary behind, and a file lock keeps parallel test
// packages from building the same thing twice.
package binaries
