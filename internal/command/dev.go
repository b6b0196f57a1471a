package command

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/kip-proxy/kip/internal/devstack"
)

func newDev() *cobra.Command {
	var (
		dir      string
		user     string
		keepDir  bool
		repoRoot string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run kip in front of a local throwaway control plane",
		Long: `kip dev builds (once, then cached) and starts a local etcd and kube-apiserver,
starts kip serve in front of them, writes a kubeconfig for a demo user whose
client certificate kip trusts, and prints what to try. It runs until Ctrl-C
and leaves nothing behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := genericapiserver.SetupSignalContext()
			out := cmd.OutOrStdout()
			stack, err := devstack.Start(ctx, devstack.Options{RepoRoot: repoRoot, Log: cmd.ErrOrStderr(), KeepDir: keepDir})
			if err != nil {
				return err
			}
			defer func() {
				_, _ = fmt.Fprintln(out, "stopping kip and the local control plane")
				if err := stack.Stop(); err != nil {
					_, _ = fmt.Fprintln(cmd.ErrOrStderr(), err)
				}
			}()
			if err := stack.CreateDemoViewRole(ctx); err != nil {
				return err
			}
			if dir == "" {
				dir = stack.Cluster.Dir
			}
			kubeconfig := filepath.Join(dir, user+".kubeconfig")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if err := stack.WriteUserKubeconfig(kubeconfig, user); err != nil {
				return err
			}
			printDemo(out, stack, kubeconfig, user)
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "kubeconfig-dir", "", "Where to write the demo user's kubeconfig (default: the stack's temporary directory).")
	cmd.Flags().StringVar(&user, "user", "demo", "Name of the demo user.")
	cmd.Flags().BoolVar(&keepDir, "keep-dir", false, "Keep keys and logs of the control plane after exit.")
	cmd.Flags().StringVar(&repoRoot, "repo-root", "", "kip checkout that holds hack/tools (default: found from the working directory).")
	return cmd
}

func printDemo(out io.Writer, s *devstack.Stack, kubeconfig, user string) {
	kubectl := s.Binaries.Kubectl
	_, _ = fmt.Fprintf(out, `
kip is running on %[1]s in front of kube-apiserver %[2]s.

The demo user %[4]q logs in with a client certificate that kip trusts:
  export KUBECONFIG=%[3]s

Try it (kubectl v1.37.2 is at %[5]s):
  %[5]s auth whoami                    # kip authenticated you; the API server sees %[4]s
  %[5]s get pods                       # forbidden: RBAC has not allowed %[4]s anything yet
  %[5]s --kubeconfig %[6]s create rolebinding %[4]s-view --clusterrole=%[8]s --user=%[4]s -n default
  %[5]s get pods                       # allowed now

Admin kubeconfig (direct to kube-apiserver): %[6]s
Probes: %[7]s/readyz   Ctrl-C stops everything and removes it.
`, s.KipURL, s.Cluster.URL, kubeconfig, user, kubectl, s.Cluster.AdminKubeconfig, s.ProbeURL, devstack.DemoViewRole)
}
