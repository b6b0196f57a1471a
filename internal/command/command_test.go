package command

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/internal/version"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("kip %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestVersionCommand(t *testing.T) {
	if out := run(t, "version"); !strings.HasPrefix(out, "kip "+version.Unstamped+"\ncommit: ") {
		t.Errorf("kip version = %q, want the unstamped version first", out)
	}
	var v version.Info
	if err := json.Unmarshal([]byte(run(t, "version", "-o", "json")), &v); err != nil || v.Version != version.Unstamped || v.GoVersion == "" {
		t.Errorf("kip version -o json = %+v, %v", v, err)
	}
}

// TestServeHelpHasSections expects kube-apiserver-style sections, in order.
func TestServeHelpHasSections(t *testing.T) {
	out := run(t, "serve", "--help")
	got := regexp.MustCompile(`(?m)^(\w+) flags:$`).FindAllStringSubmatch(out, -1)
	var sections []string
	for _, m := range got {
		sections = append(sections, m[1])
	}
	want := "Serving Authentication Upstream Clusters Audit Observability Limits Logging Misc"
	if strings.Join(sections, " ") != want {
		t.Errorf("sections = %v, want %s", sections, want)
	}
	for _, flag := range []string{"--config", "--secure-port", "--kubeconfig", "--in-cluster-token-file", "--logging-format", "--help"} {
		if !strings.Contains(out, flag) {
			t.Errorf("kip serve --help does not mention %s", flag)
		}
	}
}

// TestPluginHelpSaysKubectlKip: run by kubectl as its kip plugin, the help
// shows the commands as the user types them.
func TestPluginHelpSaysKubectlKip(t *testing.T) {
	argv0 := os.Args[0]
	defer func() { os.Args[0] = argv0 }()
	os.Args[0] = "/home/a/.krew/bin/kubectl-kip"
	if out := run(t, "login", "oidc", "--help"); !strings.Contains(out, "kubectl kip login oidc [flags]") {
		t.Errorf("help of the plugin does not say kubectl kip login oidc:\n%s", out)
	}
	os.Args[0] = "/usr/local/bin/kip"
	if out := run(t, "login", "oidc", "--help"); !strings.Contains(out, "\n  kip login oidc [flags]") {
		t.Errorf("help of kip does not say kip login oidc:\n%s", out)
	}
}
