package command

import (
	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/whoami"
)

func newWhoami() *cobra.Command {
	o := options.NewWhoami()
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the API server behind kip thinks you are",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			cfg, err := o.RESTConfig()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			r, err := whoami.Review(ctx, cfg)
			if err != nil {
				return err
			}
			return whoami.Print(cmd.OutOrStdout(), r, o.Output)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
