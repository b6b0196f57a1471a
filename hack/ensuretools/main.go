// Command ensuretools builds the pinned etcd, kube-apiserver, kubectl, Ory
// Hydra and versitygw that kip's tests and `kip dev` run, unless they are
// already cached.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kip-proxy/kip/internal/rig/binaries"
)

func main() {
	opts := binaries.Options{Log: os.Stderr}
	paths, err := binaries.Ensure(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The S3 server only the recording tests use; built here so that a
	// test's timeout never has to cover its first build.
	versityGW, err := binaries.EnsureVersityGW(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("etcd           %s\nkube-apiserver %s\nkubectl        %s\nhydra          %s\nversitygw      %s\n",
		paths.Etcd, paths.KubeAPIServer, paths.Kubectl, paths.Hydra, versityGW)
}
