package command

import (
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	genericapiserver "k8s.io/apiserver/pkg/server"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/server"
)

func newServe() *cobra.Command {
	o := options.NewServe()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the impersonating proxy",
		Long: `kip serve authenticates every request, then forwards it to the upstream API
server with kip's own credentials and Impersonate-* headers for the caller.
Settings come from flags, from a KipConfiguration file (--config), or both:
a flag given on the command line wins over the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(cmd.Flags()); err != nil {
				return err
			}
			// Logging first, so that everything after it, refusals
			// included, is logged in the chosen format.
			if err := o.ApplyLogging(); err != nil {
				return err
			}
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
	addSectionedFlags(cmd, o.Flags())
	return cmd
}

// addSectionedFlags registers fss on cmd and prints them in sections in
// --help and usage, as kube-apiserver does, instead of one alphabetical list.
func addSectionedFlags(cmd *cobra.Command, fss cliflag.NamedFlagSets) {
	fss.FlagSet("misc").BoolP("help", "h", false, "Help for "+cmd.Name()+".")
	for _, name := range fss.Order {
		cmd.Flags().AddFlagSet(fss.FlagSets[name])
	}
	// Wrapped to the terminal's width; not wrapped when piped.
	cols, _, err := term.GetSize(int(os.Stdout.Fd()))
	if err != nil {
		cols = 0
	}
	cliflag.SetUsageAndHelpFunc(cmd, fss, cols)
}
