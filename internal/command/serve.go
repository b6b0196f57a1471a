package command

import (
	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/server"
)

func newServe() *cobra.Command {
	o := options.NewServe()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the impersonating proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			cfg, err := o.Config()
			if err != nil {
				return err
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			// SIGTERM and SIGINT start a graceful shutdown; a second one
			// exits at once.
			return srv.Run(genericapiserver.SetupSignalContext())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
