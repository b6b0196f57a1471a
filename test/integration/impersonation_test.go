package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kip-proxy/kip/internal/headers"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestNestedImpersonation proves `kubectl --as` through kip: refused
// without impersonate rights, allowed with them, the upstream then sees the
// impersonated user, and the original caller travels in an extra.
func TestNestedImpersonation(t *testing.T) {
	boss := harness.UniqueName("boss")
	victim := harness.UniqueName("victim")
	kubeconfig := userKubeconfig(t, boss, "managers")

	for _, args := range [][]string{
		{"--as", victim},
		{"--as", victim, "--as-group", "system:masters"},
		{"--as", victim, "--as-uid", "1234"},
	} {
		res := kubectl(t, kubeconfig, append([]string{"get", "--raw", "/api/v1/namespaces/default/configmaps"}, args...)...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, `User "`+boss+`" cannot impersonate`) {
			t.Fatalf("without rights, %v: want forbidden, got exit %d: %s%s", args, res.ExitCode, res.Stdout, res.Stderr)
		}
	}

	grantCluster(t, userSubject(boss),
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{victim}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"groups"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"auditors"}},
		rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"uids"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"1234"}},
	)

	var info authenticationv1.UserInfo
	harness.Eventually(t, 30*time.Second, func() error {
		res := kubectl(t, kubeconfig, "auth", "whoami", "-o", "json", "--as", victim, "--as-group", "auditors", "--as-uid", "1234")
		if res.ExitCode != 0 {
			return errorf("with rights: exit %d: %s", res.ExitCode, res.Stderr)
		}
		var review authenticationv1.SelfSubjectReview
		if err := json.Unmarshal([]byte(res.Stdout), &review); err != nil {
			return err
		}
		info = review.Status.UserInfo
		return nil
	})
	if info.Username != victim || info.UID != "1234" || !slices.Contains(info.Groups, "auditors") {
		t.Fatalf("upstream sees %+v, want %s (uid 1234) in auditors", info, victim)
	}
	if slices.Contains(info.Groups, "managers") {
		t.Fatalf("the impersonated user kept the caller's groups: %v", info.Groups)
	}
	originals := info.Extra[headers.OriginalUserExtraKey]
	if len(originals) != 1 {
		t.Fatalf("extra %s = %v, want one value", headers.OriginalUserExtraKey, originals)
	}
	var original authenticationv1.UserInfo
	if err := json.Unmarshal([]byte(originals[0]), &original); err != nil {
		t.Fatalf("decoding the original user %q: %v", originals[0], err)
	}
	if original.Username != boss || !slices.Contains(original.Groups, "managers") {
		t.Fatalf("original user = %+v, want %s in managers", original, boss)
	}

	// The extra in which kip records the original caller cannot be forged,
	// even by a caller allowed to impersonate extras.
	grantCluster(t, userSubject(boss), rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"userextras/" + headers.OriginalUserExtraKey}, Verbs: []string{"impersonate"}})
	forged := kubectl(t, kubeconfig, "get", "--raw", "/api/v1/namespaces/default/configmaps", "--as", victim, "--as-user-extra", headers.OriginalUserExtraKey+"=forged")
	if forged.ExitCode == 0 || !strings.Contains(forged.Stderr, "reserved") {
		t.Fatalf("a forged original-caller extra: want refused as reserved, got exit %d: %s", forged.ExitCode, forged.Stderr)
	}

	// Rights are per name: another user or group is still refused.
	for _, args := range [][]string{{"--as", harness.UniqueName("other")}, {"--as", victim, "--as-group", "system:masters"}} {
		if res := kubectl(t, kubeconfig, append([]string{"get", "--raw", "/api/v1/namespaces/default/configmaps"}, args...)...); res.ExitCode == 0 || !strings.Contains(res.Stderr, "cannot impersonate") {
			t.Fatalf("%v: want forbidden to impersonate, got exit %d: %s", args, res.ExitCode, res.Stderr)
		}
	}
}
