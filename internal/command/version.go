package command

import (
	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/version"
)

func newVersion() *cobra.Command {
	o := options.NewVersion()
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kip's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Print(cmd.OutOrStdout(), version.Get())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
