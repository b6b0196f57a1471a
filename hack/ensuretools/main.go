// Command ensuretools builds the pinned etcd, kube-apiserver, kubectl and Ory
// Hydra that kip's tests and `kip dev` run, unless they are already cached.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kip-proxy/kip/internal/rig/binaries"
)

func main() {
	paths, err := binaries.Ensure(context.Background(), binaries.Options{Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("etcd           %s\nkube-apiserver %s\nkubectl        %s\nhydra          %s\n",
		paths.Etcd, paths.KubeAPIServer, paths.Kubectl, paths.Hydra)
}
