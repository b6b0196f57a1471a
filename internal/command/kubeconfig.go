package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/login/clusterlist"
	"github.com/kip-proxy/kip/internal/login/execcredential"
	"github.com/kip-proxy/kip/internal/options"
)

func newKubeconfig() *cobra.Command {
	o := options.NewKubeconfig()
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Write a kubeconfig whose users log in with kip login",
		Long: `kip kubeconfig writes a kubeconfig for a kip endpoint. Its user runs
kip login (oidc with --issuer and --client-id, static with --token-env) as an
exec credential plugin; the login flags given here are passed through.

For a kip gateway, --all-clusters signs in now, asks kip which clusters you
may reach, and writes a context <context-name>-<cluster> for each, at
<server>/clusters/<cluster>, all sharing the one user: one sign-in serves
every cluster.`,
		Example: `  kip kubeconfig --server https://kip.example.com --ca-file kip-ca.pem \
    --issuer https://idp.example.com --client-id kip -o ~/.kube/kip.yaml

  # every cluster of a gateway you may reach: contexts kip-prod, kip-staging, ...
  kip kubeconfig --server https://kip.example.com --ca-file kip-ca.pem \
    --issuer https://idp.example.com --client-id kip --all-clusters -o ~/.kube/kip.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := renderKubeconfig(cmd.Context(), o, cmd.ErrOrStderr())
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

// renderKubeconfig is the kubeconfig o describes; with --all-clusters, one
// context for each cluster kip lists.
func renderKubeconfig(ctx context.Context, o *options.Kubeconfig, stderr io.Writer) ([]byte, error) {
	if !o.AllClusters {
		return o.Render()
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ctx, stop := interruptible(ctx)
	defer stop()
	names, err := reachableClusters(ctx, o, stderr)
	if err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(stderr, "kip lets you reach %d cluster(s): %s\n", len(names), strings.Join(names, ", "))
	return o.RenderGateway(names)
}

// reachableClusters signs in as the kubeconfig's user will, through kip
// login's own cache, so that kubectl reuses this sign-in, and asks kip
// which clusters that user may reach.
func reachableClusters(ctx context.Context, o *options.Kubeconfig, stderr io.Writer) ([]string, error) {
	kip, err := o.KipConfig()
	if err != nil {
		return nil, err
	}
	p, err := o.Plugin(stderr)
	if err != nil {
		return nil, err
	}
	cred, err := p.Credential(ctx, execcredential.Request{Cluster: kip})
	if err != nil {
		return nil, fmt.Errorf("signing in to list the clusters: %w", err)
	}
	names, err := clusterlist.Get(ctx, kip, cred)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("kip at %s lists no cluster you may reach: ask its operators for access", kip.Host)
	}
	return names, nil
}
