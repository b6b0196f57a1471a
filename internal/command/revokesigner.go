package command

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/signer"
)

func newRevokeSignerCA(shared *options.Revoke) *cobra.Command {
	o := &options.RevokeSignerCA{}
	cmd := &cobra.Command{
		Use:   "signer-ca",
		Short: "Replace kip's signer CA and distrust every older one, for a signer key that may have leaked",
		Long: `kip revoke signer-ca asks the kip replica holding the signer Lease to replace
the CA in the signer Secret (kip serve --signer-ca-secret) and to trust no
older CA, the retired ones included, then waits until it has. Every replica
refuses every certificate kip issued before as soon as it reads the Secret.

Use it when the signer key may have leaked: whoever holds it can sign
certificates with any issue time, which no revocation by time can catch.
An ordinary rotation (the kip.dev/rotate-requested-at annotation) keeps the
old CA trusted for its window instead.

Users then need new certificates: a user's next kubectl call is refused
once, its client-go asks kip login again, kip login gets a new certificate,
and the call after that works. Requests already running, such as watches,
go on until they end. The cluster's RBAC decides who may do this: patch on
the Secret.`,
		Example: `  kip revoke signer-ca
  kip revoke signer-ca --secret kip-system/kip-signer-ca --timeout 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			namespace, name, err := o.Target()
			if err != nil {
				return err
			}
			client, err := shared.Client()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			done, err := signer.RequestDistrust(ctx, client, namespace, name)
			if err != nil {
				return err
			}
			return printDistrusted(cmd.OutOrStdout(), namespace+"/"+name, done)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func printDistrusted(w io.Writer, secret string, d signer.Distrusted) error {
	_, err := fmt.Fprintf(w, "Replaced kip's signer CA in Secret %s (rotated by %s): it now signs with %s.\nNo longer trusted:\n", secret, orUnknown(d.By), describeCA(d.New))
	for _, ca := range d.Old {
		if err == nil {
			_, err = fmt.Fprintf(w, "  %s\n", describeCA(ca))
		}
	}
	if err == nil {
		_, err = fmt.Fprintln(w, "Every replica refuses certificates those CAs signed once it reads the Secret (within seconds).")
	}
	return err
}

func describeCA(ca *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %x)", ca.Subject.CommonName, ca.SerialNumber)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown replica"
	}
	return s
}
