package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/kip-proxy/kip/internal/rig/devstack"
)

func New() *cobra.Command {
	opts := devstack.SessionOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run kip in front of a local throwaway control plane, with an identity provider",
		Long: `kip dev builds (once, then cached) and starts a local etcd and kube-apiserver,
a real OIDC provider (Ory Hydra) with a login page where you sign in as anyone,
and kip serve in front of the control plane, trusting that provider. It writes
a kubeconfig whose user signs in through kip login, another for a demo user
with a client certificate, and prints what to try. It runs until Ctrl-C and
leaves nothing behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The kubeconfig runs this very executable as kubectl's exec
			// plugin; under go run it is a temporary file that lives exactly
			// as long as kip dev.
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the kip executable for the login kubeconfig: %w", err)
			}
			opts.KipCommand, opts.Log = exe, cmd.ErrOrStderr()
			return runDev(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.KubeconfigDir, "kubeconfig-dir", "", "Where to write the kubeconfigs (default: the session's temporary directory).")
	cmd.Flags().StringVar(&opts.DemoUser, "user", "demo", "Name of the demo user with a client certificate.")
	cmd.Flags().BoolVar(&opts.KeepDir, "keep-dir", false, "Keep keys and logs of the control plane and the identity provider after exit.")
	cmd.Flags().StringVar(&opts.RepoRoot, "repo-root", "", "kip checkout that holds hack/tools (default: found from the working directory).")
	cmd.Flags().BoolVar(&opts.SkipBrowser, "skip-browser", false,
		"kip login prints the sign-in URL instead of opening a browser; open it yourself (over SSH, after forwarding the ports kip dev prints).")
	return cmd
}

func runDev(cmd *cobra.Command, opts devstack.SessionOptions) (err error) {
	ctx, stop := stopSignals(context.Background(), cmd.ErrOrStderr(), os.Stdout, os.Stderr)
	defer stop()
	out := cmd.OutOrStdout()
	s, err := devstack.StartSession(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = fmt.Fprintln(out, "stopping kip, the local control plane and the identity provider")
		err = errors.Join(err, s.Stop())
	}()
	printDev(out, s, opts)
	<-ctx.Done()
	return nil
}

// devUser, devGroup and devUsername are the walkthrough's example. The
// login page makes the e-mail claim <name>@kip.dev, and the session's
// AuthenticationConfiguration takes the username from that claim.
const (
	devUser     = "alice"
	devGroup    = "devs"
	devUsername = devUser + "@kip.dev"
)

func printDev(out io.Writer, s *devstack.Session, opts devstack.SessionOptions) {
	st := s.Stack
	_, _ = fmt.Fprintf(out, `
kip is running on %s in front of kube-apiserver %s.
It trusts the OIDC provider %s: Ory Hydra, with kip dev's login page.
`, st.KipURL, st.Cluster.URL, s.IdP.Hydra.IssuerURL)
	printSignIn(out, s, opts)
	printCertUser(out, s, opts.DemoUser)
}

// printSignIn walks through signing in at the provider: refused by RBAC
// first, allowed after a RoleBinding.
func printSignIn(out io.Writer, s *devstack.Session, opts devstack.SessionOptions) {
	kubectl := s.Stack.Binaries.Kubectl
	_, _ = fmt.Fprintf(out, `
Sign in with the identity provider (kubectl runs kip login for you):
  export KUBECONFIG=%s
  %s get pods
`, s.LoginKubeconfig, kubectl)
	if opts.SkipBrowser {
		_, _ = fmt.Fprintf(out, `    kip login prints a URL: open it in a browser on this machine. Over SSH,
    forward the provider, the login page and kip login's callback first:
      ssh -L %[1]s:%[1]s -L %[2]s:%[2]s -L %[3]s:%[3]s <this host>
`, hostPort(s.IdP.Hydra.IssuerURL), hostPort(s.IdP.LoginURL), s.CallbackAddress)
	} else {
		_, _ = fmt.Fprintln(out, "    A browser opens on the dev login page.")
	}
	_, _ = fmt.Fprintf(out, `    The browser warns about the provider's certificate, which comes from a CA
    made for this session: accept it. Type any user name and groups, say %[1]s
    and %[2]s, and press Accept. kip exchanges the ID token for a short-lived
    client certificate, and the API server refuses the user it names:
      Error from server (Forbidden): pods is forbidden: User "%[3]s" cannot list resource "pods" in API group "" in the namespace "default"
  %[4]s --kubeconfig %[5]s create rolebinding %[1]s-view --clusterrole=%[6]s --user=%[3]s -n default
    (or --group=%[2]s instead of --user, for everyone in %[2]s)
  %[4]s get pods
    Allowed now.
  %[7]s whoami
    The identity kip forwards: the user name (the e-mail claim), the UID (sub),
    the groups, and extras such as the issuer.
`, devUser, devGroup, devUsername, kubectl, s.Stack.Cluster.AdminKubeconfig, devstack.DemoViewRole, opts.KipCommand)
}

// printCertUser shows the other way in: a client certificate from the
// cluster's CA, which needs no provider at all.
func printCertUser(out io.Writer, s *devstack.Session, user string) {
	st := s.Stack
	_, _ = fmt.Fprintf(out, `
Or the demo user %[2]q, with a client certificate from the cluster's CA that kip trusts:
  export KUBECONFIG=%[1]s
  %[3]s auth whoami
  %[3]s --kubeconfig %[4]s create rolebinding %[2]s-view --clusterrole=%[5]s --user=%[2]s -n default

Admin kubeconfig (direct to kube-apiserver): %[4]s
Probes: %[6]s/readyz   Ctrl-C stops everything and removes it.
`, s.CertKubeconfig, user, st.Binaries.Kubectl, st.Cluster.AdminKubeconfig, devstack.DemoViewRole, st.ProbeURL)
}

// hostPort is the host:port of a URL the dev stack made itself.
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Host
}
