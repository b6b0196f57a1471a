package clusters

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

// TestAccessExtension reads the kip.dev/access extension as an operator
// writes it, in YAML, and checks whom the policy lets in; extensions kip
// cannot read exactly refuse the entry.
func TestAccessExtension(t *testing.T) {
	const entry = `apiVersion: v1
kind: Config
current-context: ctx
contexts:
- name: ctx
  context: {cluster: c, user: kip}
users:
- name: kip
  user: {token: kip-token}
clusters:
- name: c
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: bm90IGNoZWNrZWQ=
`
	admin := &user.DefaultInfo{Name: "ann", Groups: []string{"prod-admins"}}
	sre := &user.DefaultInfo{Name: "sam", Groups: []string{"sre"}}
	dev := &user.DefaultInfo{Name: "dev", Groups: []string{"devs"}}
	tests := []struct {
		name, extensions string
		refused          string // part of the refusal, or "" when registered
		allowed          []user.Info
		denied           []user.Info
	}{
		{name: "none", allowed: []user.Info{admin, sre, dev}},
		{name: "groups", extensions: `groups: [prod-admins]`, allowed: []user.Info{admin}, denied: []user.Info{sre, dev}},
		{name: "expression", extensions: `expression: "'sre' in user.groups"`, allowed: []user.Info{sre}, denied: []user.Info{admin, dev}},
		{name: "either", extensions: "groups: [prod-admins]\n        expression: \"user.username == 'sam'\"", allowed: []user.Info{admin, sre}, denied: []user.Info{dev}},
		{name: "misspelt", extensions: `group: [prod-admins]`, refused: "unknown field"},
		{name: "nobody", extensions: `groups: []`, refused: "nobody in"},
		{name: "broken", extensions: `expression: "user.groups &&"`, refused: "does not compile"},
		{name: "notbool", extensions: `expression: "user.username"`, refused: "not a bool"},
		{name: "scalar", extensions: "", refused: "kip.dev/access extension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := entry
			switch {
			case tt.name == "scalar":
				kc += "    extensions:\n    - name: kip.dev/access\n      extension: prod-admins\n"
			case tt.extensions != "":
				kc += "    extensions:\n    - name: kip.dev/access\n      extension:\n        " + tt.extensions + "\n"
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "prod"), []byte(kc), 0o600); err != nil {
				t.Fatal(err)
			}
			cs, refused, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tt.refused != "" {
				if len(cs) != 0 || len(refused) != 1 || !strings.Contains(refused[0].Reason, tt.refused) {
					t.Fatalf("registered %d, refused %v; want the entry refused for %q", len(cs), refused, tt.refused)
				}
				return
			}
			if len(cs) != 1 {
				t.Fatalf("refused: %v", refused)
			}
			for _, u := range tt.allowed {
				if ok, err := cs[0].Policy.Allows(u); !ok || err != nil {
					t.Errorf("%s refused (%v)", u.GetName(), err)
				}
			}
			for _, u := range tt.denied {
				if ok, _ := cs[0].Policy.Allows(u); ok {
					t.Errorf("%s let in", u.GetName())
				}
			}
		})
	}
}
