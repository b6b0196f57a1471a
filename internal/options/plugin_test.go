package options

import (
	"strings"
	"testing"
)

func TestInvokedAsPlugin(t *testing.T) {
	for argv0, want := range map[string]bool{
		"kubectl-kip":                                   true,
		"/home/a/.krew/bin/kubectl-kip":                 true,
		`C:\Users\a\.krew\bin\kubectl-kip.exe`:          true,
		`C:\Users\a\.krew\bin\KUBECTL-KIP.EXE`:          false, // krew links the lower-case name
		"kip":                                           false,
		"/usr/local/bin/kip":                            false,
		"kubectl":                                       false,
		"kubectl-kip-other":                             false,
		"/tmp/go-build123/b001/exe/kip":                 false,
		`C:\Program Files\kip\kip.exe`:                  false,
		"/home/a/.krew/store/kip/v0.2.0/kubectl-kip.sh": false,
	} {
		if got := InvokedAsPlugin(argv0); got != want {
			t.Errorf("InvokedAsPlugin(%q) = %v, want %v", argv0, got, want)
		}
	}
}

// TestKubeconfigForKrewUsers: run as kubectl's plugin, kip kubeconfig
// writes `kubectl kip login …` (a path into krew's store would break on
// the next upgrade); --kip-command=kubectl asks for the same from kip
// itself; any other command is run as it is.
func TestKubeconfigForKrewUsers(t *testing.T) {
	tests := []struct {
		name, argv0, kipCommand string
		wantCommand             string
		wantArgs                string
	}{
		{name: "as kubectl kip", argv0: "/home/a/.krew/bin/kubectl-kip", wantCommand: "kubectl", wantArgs: "kip login oidc"},
		{name: "as kubectl kip on Windows", argv0: `C:\Users\a\.krew\bin\kubectl-kip.exe`, wantCommand: "kubectl", wantArgs: "kip login oidc"},
		{name: "as kip", argv0: "/usr/local/bin/kip", wantCommand: "/usr/local/bin/kip", wantArgs: "login oidc"},
		{name: "kip asked for kubectl", argv0: "kip", kipCommand: "kubectl", wantCommand: "kubectl", wantArgs: "kip login oidc"},
		{name: "kip asked for kubectl.exe by path", argv0: "kip", kipCommand: `C:\tools\kubectl.exe`, wantCommand: `C:\tools\kubectl.exe`, wantArgs: "kip login oidc"},
		{name: "the plugin asked for kip", argv0: "kubectl-kip", kipCommand: "kip", wantCommand: "kip", wantArgs: "login oidc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := parseKubeconfig(t, "--server=https://kip.example.com", "--issuer=https://idp.example.com", "--client-id=kip")
			o.KipCommand = defaultKipCommand(tc.argv0, "/usr/local/bin/kip")
			if tc.kipCommand != "" {
				o.KipCommand = tc.kipCommand
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			c, err := o.Config()
			if err != nil {
				t.Fatal(err)
			}
			if c.Command != tc.wantCommand || !strings.HasPrefix(strings.Join(c.Args, " "), tc.wantArgs+" --") {
				t.Errorf("exec %s %q, want %s %s --…", c.Command, c.Args, tc.wantCommand, tc.wantArgs)
			}
		})
	}
}
