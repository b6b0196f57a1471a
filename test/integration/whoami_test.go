package integration

import (
	"encoding/json"
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
)

// whoami runs `kubectl auth whoami -o json` and returns what the upstream
// said the caller is.
func whoami(t *testing.T, kubeconfig string, args ...string) authenticationv1.UserInfo {
	t.Helper()
	out := mustKubectl(t, kubeconfig, append([]string{"auth", "whoami", "-o", "json"}, args...)...)
	var review authenticationv1.SelfSubjectReview
	if err := json.Unmarshal([]byte(out), &review); err != nil {
		t.Fatalf("decoding whoami output %q: %v", out, err)
	}
	return review.Status.UserInfo
}

// TestWhoAmIShowsTheCertificateIdentity proves the upstream sees exactly the
// certificate's user and groups, with system:authenticated, and the
// certificate's credential ID.
func TestWhoAmIShowsTheCertificateIdentity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		user   string
		groups []string
	}{
		{"no groups", "solo", nil},
		{"two groups", "alice", []string{"devs", "qa"}},
		{"odd characters", "bob@example.com", []string{"team:platform", "Group With Spaces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := whoami(t, userKubeconfig(t, tc.user, tc.groups...))
			if info.Username != tc.user {
				t.Errorf("username = %q, want %q", info.Username, tc.user)
			}
			want := append(slices.Clone(tc.groups), "system:authenticated")
			got := slices.Clone(info.Groups)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("groups = %v, want %v", info.Groups, want)
			}
			if len(info.Extra["authentication.kubernetes.io/credential-id"]) != 1 {
				t.Errorf("extra = %v, want exactly one credential-id", info.Extra)
			}
			if len(info.Extra) != 1 {
				t.Errorf("extra = %v, want only the credential-id", info.Extra)
			}
		})
	}
}
