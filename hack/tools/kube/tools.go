//go:build tools

// Package tools pins the kube-apiserver and kubectl that kip's tests run against.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
