package command

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/login/execcredential"
	"github.com/kip-proxy/kip/internal/options"
)

func newLogin() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login",
		Short: "kubectl credential plugin: sign in and get a kip credential",
		Long: `kip login is the exec credential plugin that kubeconfigs written by
kip kubeconfig run. It prints a client.authentication.k8s.io/v1
ExecCredential on stdout and talks to the human on stderr.

By default (--mode certificate) it exchanges the user's token at kip for a
short-lived client certificate whose private key never leaves this machine.
Tokens and certificates are cached, so most kubectl calls cost nothing.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newLoginOIDC(), newLoginStatic())
	return cmd
}

func newLoginOIDC() *cobra.Command {
	o := options.NewLoginOIDC()
	return pluginCommand("oidc", "Sign in with an OIDC provider (browser or device flow)", o, oidcPlugin(o), runLogin)
}

func newLoginStatic() *cobra.Command {
	o := options.NewLoginStatic()
	return pluginCommand("static", "Use a token that kip verifies with its webhook", o, staticPlugin(o), runLogin)
}

func runLogin(cmd *cobra.Command, p *login.Plugin) error {
	ctx, stop := interruptible(cmd.Context())
	defer stop()
	return p.Run(ctx, cmd.OutOrStdout())
}

// pluginFlags are the flags of one kind of login.
type pluginFlags interface {
	AddFlags(*pflag.FlagSet)
	Validate() error
}

// pluginCommand is the subcommand of kip login or kip logout for one kind
// of login: both take the same flags, so that the kubeconfig's exec
// arguments work for either, and run does with the plugin what the
// command is for.
func pluginCommand(use, short string, o pluginFlags, plugin func(stderr io.Writer) (*login.Plugin, error), run func(*cobra.Command, *login.Plugin) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			p, err := plugin(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return run(cmd, p)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func oidcPlugin(o *options.LoginOIDC) func(io.Writer) (*login.Plugin, error) {
	return func(stderr io.Writer) (*login.Plugin, error) {
		return o.Plugin(stderr, os.Getenv(execcredential.EnvVar))
	}
}

func staticPlugin(o *options.LoginStatic) func(io.Writer) (*login.Plugin, error) {
	return func(stderr io.Writer) (*login.Plugin, error) {
		return o.Plugin(stderr, os.Getenv(execcredential.EnvVar), os.LookupEnv)
	}
}

// interruptible ends ctx on Ctrl-C or SIGTERM, so that a sign-in waiting
// for the browser stops cleanly and releases the cache lock.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
