package options

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// parseKubeconfig parses args the way cobra does.
func parseKubeconfig(t *testing.T, args ...string) *Kubeconfig {
	t.Helper()
	o := NewKubeconfig()
	o.KipCommand = "/usr/local/bin/kip"
	fs := pflag.NewFlagSet("kubeconfig", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestKubeconfigValidate(t *testing.T) {
	ca := existingFile(t)
	oidc := []string{"--server=https://kip.example.com", "--issuer=https://idp.example.com", "--client-id=kip"}
	static := []string{"--server=https://kip.example.com", "--token-env=KIP_TOKEN"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "oidc", args: oidc},
		{name: "oidc with CA and options", args: append(oidc, "--ca-file="+ca, "--flow=device", "--mode=token", "--scopes=email")},
		{name: "static", args: static},
		{name: "static token", args: []string{"--server=https://kip.example.com", "--token=t"}},
		{name: "no server", args: oidc[1:], want: []string{"--server is required"}},
		{name: "http server", args: append([]string{"--server=http://kip.example.com"}, oidc[1:]...), want: []string{"must be an https URL"}},
		{name: "missing CA", args: append(oidc, "--ca-file=/nonexistent"), want: []string{"--ca-file: stat /nonexistent"}},
		{name: "no login", args: oidc[:1], want: []string{"say how users log in"}},
		{name: "oidc and static", args: append(oidc, "--token-env=X"), want: []string{"cannot be combined with --token/--token-env"}},
		{name: "client id without issuer", args: []string{"--server=https://kip.example.com", "--client-id=kip"}, want: []string{"--issuer is required"}},
		{name: "static with an oidc flag", args: append(static, "--flow=device"), want: []string{"--flow is not a flag of kip login static"}},
		{name: "oidc flags validated as kip login does", args: append(oidc, "--skip-browser", "--browser-command=firefox"), want: []string{"--browser-command cannot be combined with --skip-browser"}},
		{name: "bad mode", args: append(static, "--mode=x"), want: []string{"--mode must be certificate or token"}},
		{name: "empty context name", args: append(oidc, "--context-name="), want: []string{"--context-name must not be empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, parseKubeconfig(t, tc.args...).Validate(), tc.want)
		})
	}
}

func TestKubeconfigPassesOnlySetLoginFlags(t *testing.T) {
	o := parseKubeconfig(t, "--server=https://kip.example.com", "--issuer=https://idp.example.com", "--client-id=kip",
		"--scopes=email,groups", "--skip-browser", "--issuer-ca-file=ca.pem", "--cache-dir=cache", "--context-name=prod")
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--issuer-ca-file") {
		t.Fatalf("want the missing relative CA file reported, got %v", err)
	}
	c, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	want := []string{"login", "oidc", "--cache-dir=" + abs("cache"), "--client-id=kip", "--issuer=https://idp.example.com",
		"--issuer-ca-file=" + abs("ca.pem"), "--scopes=email,groups", "--skip-browser=true"}
	if strings.Join(c.Args, " ") != strings.Join(want, " ") {
		t.Errorf("args\n%q\nwant\n%q", c.Args, want)
	}
	if c.ContextName != "prod" || c.Command != "/usr/local/bin/kip" || c.Server != "https://kip.example.com" {
		t.Errorf("unexpected config %+v", c)
	}
}
