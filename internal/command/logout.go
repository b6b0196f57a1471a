package command

import (
	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/options"
)

func newLogout() *cobra.Command {
	o := options.NewLogoutAll()
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Delete a cached login and revoke its refresh token at the provider",
		Long: `kip logout deletes what kip login cached for one configuration (ID token,
refresh token, kip certificate and key), then revokes the refresh token at
the identity provider (RFC 7009) when its discovery document names a
revocation endpoint. Give it the arguments kip login gets in the
kubeconfig's exec section:

  kip logout oidc --issuer=https://login.example.com --client-id=kip ...

Without --kip-server it ends that login at every kip. kip logout --all
deletes every cached login.

The local entry is deleted even when the provider refuses the revocation;
the exit status is then non-zero. An ID token or certificate copied
before stays valid until it expires, unless an administrator revokes it
at kip.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			l, err := o.Logout(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			return runLogout(cmd, l)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.AddCommand(newLogoutOIDC(), newLogoutStatic())
	return cmd
}

func newLogoutOIDC() *cobra.Command {
	o := options.NewLoginOIDC()
	return pluginCommand("oidc", "End the login of kip login oidc with the same flags", o, oidcPlugin(o), pluginLogout)
}

func newLogoutStatic() *cobra.Command {
	o := options.NewLoginStatic()
	return pluginCommand("static", "End the login of kip login static with the same flags", o, staticPlugin(o), pluginLogout)
}

func pluginLogout(cmd *cobra.Command, p *login.Plugin) error {
	l, err := p.Logout(cmd.OutOrStdout())
	if err != nil {
		return err
	}
	return runLogout(cmd, l)
}

func runLogout(cmd *cobra.Command, l *login.Logout) error {
	ctx, stop := interruptible(cmd.Context())
	defer stop()
	return l.Run(ctx)
}
