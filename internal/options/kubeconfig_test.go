package options

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/login/execcredential"
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

func TestKubeconfigAllClustersValidate(t *testing.T) {
	login := []string{"--issuer=https://idp.example.com", "--client-id=kip", "--all-clusters"}
	with := func(server string, more ...string) []string {
		return append(append([]string{"--server=" + server}, login...), more...)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "kip's root", args: with("https://kip.example.com")},
		{name: "kip's root with a slash and a port", args: with("https://kip.example.com:8443/")},
		{name: "static login", args: []string{"--server=https://kip.example.com", "--token-env=KIP_TOKEN", "--all-clusters"}},
		{name: "a server that is already one cluster", args: with("https://kip.example.com/clusters/prod"),
			want: []string{`--all-clusters needs kip's own URL, such as https://kip.example.com, not "https://kip.example.com/clusters/prod"`}},
		{name: "a server below a path", args: with("https://lb.example.com/kip"), want: []string{"--all-clusters needs kip's own URL"}},
		{name: "a server with a query", args: with("https://kip.example.com/?cluster=prod"), want: []string{"--all-clusters needs kip's own URL"}},
		{name: "a server with a fragment", args: with("https://kip.example.com#prod"), want: []string{"--all-clusters needs kip's own URL"}},
		{name: "an http server is refused once, for being http", args: with("http://kip.example.com"), want: []string{"must be an https URL"}},
		{name: "no login", args: []string{"--server=https://kip.example.com", "--all-clusters"}, want: []string{"say how users log in"}},
		{name: "an empty context prefix", args: with("https://kip.example.com", "--context-name="), want: []string{"--context-name must not be empty"}},
		{name: "an empty cluster prefix", args: with("https://kip.example.com", "--cluster-name="), want: []string{"--cluster-name must not be empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := parseKubeconfig(t, tc.args...).Validate()
			checkErrors(t, err, tc.want)
			if err != nil && strings.Count(err.Error(), "--all-clusters") > 1 {
				t.Errorf("the server was refused twice: %v", err)
			}
			if tc.name == "an http server is refused once, for being http" && strings.Contains(err.Error(), "--all-clusters") {
				t.Errorf("an http server is also refused as a gateway root: %v", err)
			}
		})
	}
}

func TestKubeconfigRenderGateway(t *testing.T) {
	args := []string{"--server=https://kip.example.com/", "--token-env=KIP_TOKEN", "--context-name=acme", "--all-clusters"}
	tests := []struct {
		name     string
		args     []string
		clusters []string
		render   func(*Kubeconfig, []string) ([]byte, error)
		want     string
	}{
		{name: "one context per cluster", args: args, clusters: []string{"dev", "prod"}, render: (*Kubeconfig).RenderGateway,
			want: "server: https://kip.example.com/clusters/prod"},
		{name: "no cluster", args: args, render: (*Kubeconfig).RenderGateway, want: "at least one cluster"},
		{name: "clusters without --all-clusters", args: args[:3], clusters: []string{"dev"}, render: (*Kubeconfig).RenderGateway, want: "needs --all-clusters"},
		{name: "--all-clusters without the list", args: args, render: func(o *Kubeconfig, _ []string) ([]byte, error) { return o.Render() },
			want: "needs the list of clusters"},
		{name: "options are still validated", args: append(args[1:], "--server=https://kip.example.com/clusters/x"), clusters: []string{"dev"},
			render: (*Kubeconfig).RenderGateway, want: "needs kip's own URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.render(parseKubeconfig(t, tc.args...), tc.clusters)
			got := string(b)
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %s, want it to contain %q", got, tc.want)
			}
			if err == nil && (strings.Count(got, "exec:") != 1 || !strings.Contains(got, "current-context: acme-dev")) {
				t.Errorf("want one shared exec user and acme-dev current:\n%s", got)
			}
		})
	}
}

func TestKubeconfigKipConfigAndPlugin(t *testing.T) {
	ca := existingFile(t)
	o := parseKubeconfig(t, "--server=https://kip.example.com/", "--ca-file="+ca, "--token=t", "--mode=token", "--all-clusters")
	kip, err := o.KipConfig()
	if err != nil {
		t.Fatal(err)
	}
	if kip.Host != "https://kip.example.com" || string(kip.CAData) != "x" {
		t.Errorf("kip's address %q, CA %q: want the root without a trailing slash, as kip login derives it", kip.Host, kip.CAData)
	}
	p, err := o.Plugin(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := p.Credential(context.Background(), execcredential.Request{Cluster: kip})
	if err != nil || cred.Token != "t" {
		t.Errorf("the plugin of a static token in token mode gave %+v, %v", cred, err)
	}
	if _, err := parseKubeconfig(t, "--server=https://kip.example.com").Plugin(io.Discard); err == nil {
		t.Error("built a plugin without a way to log in")
	}
	oidc := parseKubeconfig(t, "--server=https://kip.example.com", "--issuer=https://idp.example.com", "--client-id=kip")
	if _, err := oidc.Plugin(io.Discard); err != nil {
		t.Errorf("the OIDC plugin: %v", err)
	}
}
