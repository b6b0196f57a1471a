package identity

import (
	"os"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestWebhookReservedNamesAreRefused is rule 4 for the token webhook, end
// to end: a kip of the test's own asks a webhook that answers with
// system: names. Each such token gets 401 as a bearer token and
// "authentication failed" at the exchange, kip's log says why, and the
// upstream's audit log never names the user. The webhook's ordinary user
// is served, and the upstream does name it, so the test can tell.
func TestWebhookReservedNamesAreRefused(t *testing.T) {
	hook := startUsersWebhook(t)
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	kip, err := startReplica(t, ns, 0, "--authentication-token-webhook-config-file="+hook.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		user authenticationv1.UserInfo
		logs string // "" for an identity kip serves
	}{
		{name: "ordinary user", user: authenticationv1.UserInfo{Username: harness.UniqueName("dana"), Groups: []string{"devs"}}},
		{name: "system:masters group", user: authenticationv1.UserInfo{Username: harness.UniqueName("mallory"), Groups: []string{"devs", "system:masters"}},
			logs: `the group \"system:masters\" is in the reserved system: namespace`},
		{name: "system:masters group in other letter case", user: authenticationv1.UserInfo{Username: harness.UniqueName("mallory"), Groups: []string{"System:Masters"}},
			logs: `the group \"System:Masters\" is in the reserved system: namespace`},
		{name: "system: username", user: authenticationv1.UserInfo{Username: "system:" + harness.UniqueName("kube-scheduler")},
			logs: `is in the reserved system: namespace`},
		{name: "system:serviceaccount username", user: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:" + harness.UniqueName("sa")},
			logs: `is in the reserved system: namespace`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := hook.tokenFor(tt.user)
			bearer := rest.CopyConfig(kip.config)
			bearer.BearerToken = token
			got, err := whoami(t, bearer)
			if tt.logs == "" {
				if err != nil || got.Username != tt.user.Username {
					t.Fatalf("whoami = %+v, %v; want %s", got, err, tt.user.Username)
				}
				if !upstreamSaw(t, tt.user.Username) {
					t.Fatalf("the upstream's audit log does not name %s, so it cannot show a refusal either", tt.user.Username)
				}
				return
			}
			if !apierrors.IsUnauthorized(err) {
				t.Errorf("as a bearer token: %+v, %v; want 401 Unauthorized", got, err)
			}
			out, err := exchangeAt(t, kip.config, token, nil)
			if err != nil || out.Status.Credential != nil || ptrString(out.Status.Message) != "authentication failed" {
				t.Errorf("exchange = %+v, %v; want only the message \"authentication failed\"", out.Status, err)
			}
			if hook.ReviewsOf(token) == 0 {
				t.Error("the webhook was never asked, so its answer was not what kip refused")
			}
			if upstreamSaw(t, tt.user.Username) {
				t.Errorf("the upstream saw a request as %s", tt.user.Username)
			}
			if log, _ := os.ReadFile(kip.LogPath); !strings.Contains(string(log), tt.logs) {
				t.Errorf("kip's log does not say %q", tt.logs)
			}
		})
	}
}
