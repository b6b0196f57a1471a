package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/options"
	"github.com/kip-proxy/kip/internal/revocation"
)

func newRevoke() *cobra.Command {
	o := &options.Revoke{}
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a user's, group's or single credential's access through every kip replica",
		Long: `kip revoke writes an entry to kip's revocation list, a ConfigMap on kip's
home cluster that every replica follows (kip serve --revocation-configmap).
Within seconds every replica refuses the subject's credentials issued before
the entry's time: kip's certificates, ID tokens and webhook tokens, at the
proxy and at the credential exchange. The cluster's RBAC decides who may
revoke: update on that ConfigMap (the chart's kip-revoker Role).

A credential issued after the entry's time is accepted again, so a user the
identity provider still vouches for can sign in afresh. To keep someone out,
disable them at the identity provider, or lock them out with --for.`,
		Example: `  kip revoke user alice@example.com --reason "laptop stolen"
  kip revoke group contractors --for 12h
  kip revoke credential X509SHA256=2f1c…   # from an audit event's credential-id
  kip revoke list
  kip revoke remove user alice@example.com
  kip revoke signer-ca                     # a signer key that may have leaked`,
	}
	o.AddFlags(cmd.PersistentFlags())
	for _, kind := range revocation.Kinds {
		cmd.AddCommand(newRevokeKind(o, kind))
	}
	cmd.AddCommand(newRevokeList(o), newRevokeRemove(o), newRevokeSignerCA(o))
	return cmd
}

var revokeKindHelp = map[revocation.Kind]string{
	revocation.KindUser:       "Revoke a user's credentials, by username as kip impersonates it",
	revocation.KindUID:        "Revoke a user's credentials, by UID",
	revocation.KindGroup:      "Revoke the credentials of every member of a group",
	revocation.KindCredential: "Revoke one credential, by its credential-id (X509SHA256=… or JTI=…)",
}

func newRevokeKind(shared *options.Revoke, kind revocation.Kind) *cobra.Command {
	o := &options.RevokeEntry{}
	cmd := &cobra.Command{
		Use:   string(kind) + " NAME",
		Short: revokeKindHelp[kind],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			e, err := o.Entry(kind, args[0], now)
			if err != nil {
				return err
			}
			src, err := shared.Source()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			e.By = whoAmI(ctx, src)
			written, err := src.Add(ctx, e, now)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Revoked %s %q: credentials issued before %s are refused until %s (entry %s in %s).\n",
				written.Kind, written.Value, written.Before.Format(time.RFC3339), written.Expires.Format(time.RFC3339), written.Key(), src)
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// whoAmI is the name the cluster knows the caller by, for the entry's
// record; empty when it cannot tell. The cluster's audit log holds who
// wrote the ConfigMap in any case.
func whoAmI(ctx context.Context, src revocation.Source) string {
	review, err := src.Client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return ""
	}
	return review.Status.UserInfo.Username
}

func newRevokeList(shared *options.Revoke) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the revocation list's entries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("--output %q: only json is known", output)
			}
			src, err := shared.Source()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			entries, problems, err := src.Entries(ctx)
			if err != nil {
				return err
			}
			for _, p := range problems {
				if _, err := fmt.Fprintln(cmd.ErrOrStderr(), "warning:", p); err != nil {
					return err
				}
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), entries)
			}
			return printEntries(cmd.OutOrStdout(), entries, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json, or a table when empty.")
	return cmd
}

func printJSON(w io.Writer, entries []revocation.Entry) error {
	if entries == nil {
		entries = []revocation.Entry{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(entries)
}

func printEntries(w io.Writer, entries []revocation.Entry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	// tabwriter keeps the first write error and Flush returns it.
	_, _ = fmt.Fprintln(tw, "KIND\tNAME\tBEFORE\tEXPIRES\tBY\tREASON")
	for _, e := range entries {
		expires := e.Expires.Format(time.RFC3339)
		if !e.InForce(now) {
			expires += " (expired)"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, e.Value, e.Before.Format(time.RFC3339), expires, e.By, e.Reason)
	}
	return tw.Flush()
}

func newRevokeRemove(shared *options.Revoke) *cobra.Command {
	return &cobra.Command{
		Use:   "remove KIND NAME",
		Short: "Remove an entry, lifting its revocation or lock",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := revocation.Kind(args[0])
			if err := revocation.ValidateSubject(kind, args[1]); err != nil {
				return err
			}
			src, err := shared.Source()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			found, err := src.Remove(ctx, kind, args[1], time.Now())
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("the revocation list %s has no entry for %s %q", src, kind, args[1])
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Removed the entry for %s %q.\n", kind, args[1])
			return err
		},
	}
}
