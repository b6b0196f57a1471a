package command

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

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
	cmd := &cobra.Command{
		Use:   "oidc",
		Short: "Sign in with an OIDC provider (browser or device flow)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			p, err := o.Plugin(cmd.ErrOrStderr(), os.Getenv(execcredential.EnvVar))
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			return p.Run(ctx, cmd.OutOrStdout())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newLoginStatic() *cobra.Command {
	o := options.NewLoginStatic()
	cmd := &cobra.Command{
		Use:   "static",
		Short: "Use a token that kip verifies with its webhook",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			p, err := o.Plugin(cmd.ErrOrStderr(), os.Getenv(execcredential.EnvVar), os.LookupEnv)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			return p.Run(ctx, cmd.OutOrStdout())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// interruptible ends ctx on Ctrl-C or SIGTERM, so that a sign-in waiting
// for the browser stops cleanly and releases the cache lock.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
