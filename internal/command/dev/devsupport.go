package dev

import "fmt"

// devNeedsLinux is what `kip dev` answers on every other system: it runs
// Linux builds of etcd, kube-apiserver and a test node, and supervises them
// with Linux process groups.
func devNeedsLinux(goos, goarch string) error {
	return fmt.Errorf("kip dev needs Linux (this is %s/%s): it builds and runs a local etcd and kube-apiserver, "+
		"which run only there. Run `make dev` on a Linux machine or VM; the client commands "+
		"(kip login, kip kubeconfig, kip whoami) work here against any kip", goos, goarch)
}
