package command

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/options"
)

// NewRoot returns the kip command with its subcommands and more, the ones
// that live in packages of their own (kip dev, which uses the rig).
func NewRoot(more ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   "kip",
		Short: "kip is a Kubernetes impersonation proxy",
		Long: `kip stands in front of a Kubernetes API server, authenticates callers with
identities that server cannot verify itself, and forwards every request with
its own credentials plus Impersonate-* headers, so the API server applies its
RBAC, admission and audit to the real user.`,
		SilenceUsage: true,
	}
	root.AddCommand(newServe(), newLogin(), newLogout(), newKubeconfig(), newWhoami(), newSessions(), newRevoke(), newVersion())
	root.AddCommand(more...)
	if options.InvokedAsPlugin(os.Args[0]) {
		// Help and usage lines say what the user typed: kubectl kip login.
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl kip"}
	}
	return root
}
