package command

import (
	"bytes"
	"strings"
	"testing"
)

// TestLogoutCommand: kip logout takes kip login's flags after oidc or
// static, so a kubeconfig's exec arguments can be pasted, and refuses to
// guess which login to end.
func TestLogoutCommand(t *testing.T) {
	cache := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		{name: "no login named", args: []string{"logout"}, wantErr: "say which login to end"},
		{name: "a login's exec arguments", args: []string{
			"logout", "oidc", "--issuer=https://idp.example.com", "--client-id=kip", "--scopes=offline_access,email",
			"--listen-address=127.0.0.1:8000", "--skip-browser", "--mode=certificate", "--cache-dir=" + cache,
		}, wantOut: "No cached login for issuer https://idp.example.com, client kip"},
		{name: "static", args: []string{"logout", "static", "--token=t", "--cache-dir=" + cache}, wantOut: "No cached login for kip login static"},
		{name: "all", args: []string{"logout", "--all", "--cache-dir=" + cache}, wantOut: "No cached login for any configuration"},
		{name: "oidc without its issuer", args: []string{"logout", "oidc", "--client-id=kip", "--cache-dir=" + cache}, wantErr: "--issuer is required"},
		{name: "--all is not a flag of a login", args: []string{"logout", "oidc", "--all"}, wantErr: "unknown flag: --all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := NewRoot()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(tc.args)
			err := root.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("err = %v, output:\n%s\nwant %q", err, out.String(), tc.wantOut)
			}
		})
	}
}
