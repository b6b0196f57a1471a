// Package integration proves kip end to end: one real etcd and
// kube-apiserver per package run, kip in front of them, and the real kubectl
// and client-go as the callers. The kips of its own that a test needs (a
// process to signal, one in this process) come from internal/rig/harness.
package integration
