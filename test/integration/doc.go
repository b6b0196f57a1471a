// Package integration proves kip end to end: one real etcd and
// kube-apiserver per package run, kip in front of them, and the real kubectl
// and client-go as the callers.
package integration
