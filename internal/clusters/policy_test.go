package clusters

import (
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestCompilePolicyRefuses(t *testing.T) {
	tests := []struct{ expression, want string }{
		{"'prod-admins' in user.groups &&", "does not compile"},
		{"user.username", "not a bool"},
		{"size(user.groups)", "not a bool"},
		{"request.path == '/'", "does not compile"},
		{"'a' in users.groups", "does not compile"},
	}
	for _, tt := range tests {
		t.Run(tt.expression, func(t *testing.T) {
			_, err := CompilePolicy(tt.expression, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CompilePolicy(%q) = %v, want an error saying %q", tt.expression, err, tt.want)
			}
		})
	}
}

func TestPolicyAllows(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice@example.com", UID: "u-1", Groups: []string{"devs", "prod-admins"},
		Extra: map[string][]string{"example.com/team": {"payments"}}}
	bob := &user.DefaultInfo{Name: "bob@example.com", Groups: []string{"devs"}}
	nobody := &user.DefaultInfo{Name: "mallory"}
	tests := []struct {
		name       string
		expression string
		groups     []string
		user       user.Info
		want       bool
		wantErr    bool
	}{
		{name: "no policy allows everyone", user: nobody, want: true},
		{name: "a group in the list", groups: []string{"prod-admins"}, user: alice, want: true},
		{name: "no group in the list", groups: []string{"prod-admins"}, user: bob},
		{name: "no groups at all", groups: []string{"prod-admins"}, user: nobody},
		{name: "a group by expression", expression: "'prod-admins' in user.groups", user: alice, want: true},
		{name: "refused by expression", expression: "'prod-admins' in user.groups", user: bob},
		{name: "a user without groups", expression: "'prod-admins' in user.groups", user: nobody},
		{name: "by name suffix", expression: "user.username.endsWith('@example.com')", user: bob, want: true},
		{name: "a look-alike name suffix", expression: "user.username.endsWith('@example.com')",
			user: &user.DefaultInfo{Name: "eve@example.com.evil.test"}},
		{name: "by extra", expression: "'payments' in user.extra['example.com/team']", user: alice, want: true},
		// A missing key fails the evaluation, which refuses.
		{name: "a missing extra", expression: "'payments' in user.extra['example.com/team']", user: bob, wantErr: true},
		{name: "a guarded extra", expression: "'example.com/team' in user.extra && 'payments' in user.extra['example.com/team']", user: bob},
		{name: "an empty UID", expression: "user.uid != ''", user: bob},
		{name: "groups or expression", expression: "user.username == 'root'", groups: []string{"devs"}, user: bob, want: true},
		{name: "neither groups nor expression", expression: "user.username == 'root'", groups: []string{"ops"}, user: bob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompilePolicy(tt.expression, tt.groups)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Allows(tt.user)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Allows = %v, %v; want %v (error: %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && got {
				t.Fatal("a failed evaluation allowed the user")
			}
		})
	}
}

// TestPolicyCostLimit: an expression that would do unbounded work over a
// user's groups is stopped, and refuses.
func TestPolicyCostLimit(t *testing.T) {
	p, err := CompilePolicy("user.groups.all(a, user.groups.all(b, user.groups.all(c, a + b + c != 'x')))", nil)
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]string, 300)
	for i := range groups {
		groups[i] = strings.Repeat("g", i%7+1)
	}
	allowed, err := p.Allows(&user.DefaultInfo{Name: "many", Groups: groups})
	if err == nil || allowed {
		t.Fatalf("Allows = %v, %v; want the cost limit to refuse", allowed, err)
	}
}

// TestPolicyManyGroups: the cost limit leaves an ordinary policy room for
// a user with thousands of groups.
func TestPolicyManyGroups(t *testing.T) {
	p, err := CompilePolicy("'prod-admins' in user.groups || user.groups.exists(g, g.startsWith('sre-'))", nil)
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]string, 5000)
	for i := range groups {
		groups[i] = "team-" + strings.Repeat("x", i%40)
	}
	groups[len(groups)-1] = "sre-oncall"
	if allowed, err := p.Allows(&user.DefaultInfo{Name: "many", Groups: groups}); err != nil || !allowed {
		t.Fatalf("Allows = %v, %v; want allowed within the cost limit", allowed, err)
	}
}
