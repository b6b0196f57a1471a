package command

import (
	"github.com/spf13/cobra"
)

// NewRoot returns the kip command with all its subcommands.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "kip",
		Short: "kip is a Kubernetes impersonation proxy",
		Long: `kip stands in front of a Kubernetes API server, authenticates callers with
identities that server cannot verify itself, and forwards every request with
its own credentials plus Impersonate-* headers, so the API server applies its
RBAC, admission and audit to the real user.`,
		SilenceUsage: true,
	}
	root.AddCommand(newServe(), newDev(), newLogin(), newKubeconfig(), newWhoami(), newVersion())
	return root
}
