package identity

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestKubectlKipLogin: kip installed as kubectl's plugin, as krew installs
// it (a kubectl-kip link on the PATH), signs users in exactly as kip does.
// `kubectl kip kubeconfig` writes a user that runs `kubectl kip login`,
// and the real kubectl signs in through it, uses the cache, and reaches the
// upstream as the provider's user.
func TestKubectlKipLogin(t *testing.T) {
	bin := t.TempDir()
	if err := os.Symlink(env.kip, filepath.Join(bin, "kubectl-kip")); err != nil {
		t.Fatal(err)
	}
	pathEnv := "PATH=" + strings.Join([]string{bin, filepath.Dir(env.kubectl), os.Getenv("PATH")}, string(os.PathListSeparator))
	processEnv := append(os.Environ(), pathEnv)

	kubeconfig, args := kubeconfigArgs(t, "certificate", "--skip-browser")
	cmd := exec.Command(env.kubectl, append([]string{"kip"}, args...)...)
	cmd.Env = processEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl kip kubeconfig: %v\n%s", err, out)
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	plugin := cfg.AuthInfos["kip"].Exec
	if plugin.Command != "kubectl" || len(plugin.Args) < 3 || strings.Join(plugin.Args[:3], " ") != "kip login oidc" {
		t.Fatalf("the kubeconfig runs %s %q, want kubectl kip login oidc", plugin.Command, plugin.Args)
	}

	name, group := harness.UniqueName("plugin"), harness.UniqueName("team")
	bindGroup(t, group)
	s := &signInCounter{who: person(name, group), env: processEnv}
	out, stderr, err := s.kubectl(t, kubeconfig, "auth", "whoami", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl auth whoami through kubectl kip login: %v\n%s", err, stderr)
	}
	checkIdentity(t, parseWhoami(t, out), idpUser(name, group))
	if _, stderr, err := s.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default"); err != nil {
		t.Fatalf("kubectl get configmaps: %v\n%s", err, stderr)
	}
	if n := s.take(); n != 1 {
		t.Errorf("%d sign-ins for two kubectl calls, want 1: the plugin did not use the cache", n)
	}
}
