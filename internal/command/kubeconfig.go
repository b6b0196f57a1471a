package command

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/options"
)

func newKubeconfig() *cobra.Command {
	o := options.NewKubeconfig()
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Write a kubeconfig whose users log in with kip login",
		Long: `kip kubeconfig writes a kubeconfig for a kip endpoint. Its user runs
kip login (oidc with --issuer and --client-id, static with --token-env) as an
exec credential plugin; the login flags given here are passed through.`,
		Example: `  kip kubeconfig --server https://kip.example.com --ca-file kip-ca.pem \
    --issuer https://idp.example.com --client-id kip -o ~/.kube/kip.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := o.Render()
			if err != nil {
				return err
			}
			if o.Output == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(o.Output, b, 0o600); err != nil {
				return fmt.Errorf("writing the kubeconfig: %w", err)
			}
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
