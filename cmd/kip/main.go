// Command kip is a Kubernetes impersonation proxy.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/kip-proxy/kip/internal/command"
	"github.com/kip-proxy/kip/internal/command/dev"
)

func main() {
	os.Exit(cli.Run(command.NewRoot(dev.New())))
}
