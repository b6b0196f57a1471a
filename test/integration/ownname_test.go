package integration

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestOwnUpstreamNameIsRefused: kip runs upstream as devstack.KipUser, a
// plain user name from its kubeconfig. A client-CA certificate for that
// name would have kip impersonate itself and so hand the caller kip's
// rights, impersonation of anyone included. kip refuses it with 401, in
// any letter case and even when the caller asks to impersonate someone;
// no request for it reaches the upstream. A name that only starts like
// kip's is served, and reaches the upstream, which is what makes the
// missing upstream audit events mean something.
func TestOwnUpstreamNameIsRefused(t *testing.T) {
	tests := []struct {
		name        string
		user        string
		groups      []string
		impersonate string // kubectl --as
		wantCode    int
	}{
		{name: "kip's own name", user: devstack.KipUser, wantCode: http.StatusUnauthorized},
		{name: "kip's own name with a group", user: devstack.KipUser, groups: []string{"devs"}, wantCode: http.StatusUnauthorized},
		{name: "kip's own name in other letter case", user: strings.ToUpper(devstack.KipUser), wantCode: http.StatusUnauthorized},
		{name: "kip's own name asking to impersonate", user: devstack.KipUser, impersonate: "someone-else", wantCode: http.StatusUnauthorized},
		{name: "a name that only starts like kip's", user: devstack.KipUser + "-not", wantCode: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := harness.UniqueName("ownname")
			cfg := stack.UserConfigFor(tt.user, tt.groups...)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: tt.impersonate}
			client := kubernetes.NewForConfigOrDie(cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// A namespace nobody created: only the marker in the path matters.
			_, err := client.CoreV1().ConfigMaps(marker).List(ctx, metav1.ListOptions{})
			var status apierrors.APIStatus
			if !errors.As(err, &status) || int(status.Status().Code) != tt.wantCode {
				t.Fatalf("listing configmaps as %s through kip: %v, want %d", tt.user, err, tt.wantCode)
			}
			if tt.wantCode == http.StatusForbidden {
				// The control: kip impersonated this user, and the upstream
				// recorded it.
				ev := auditEvents(t, marker)[0]
				if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != tt.user {
					t.Fatalf("the upstream saw %+v, want %s impersonated", ev.ImpersonatedUser, tt.user)
				}
				return
			}
			// kip's own audit log records the refusal, and the upstream
			// never heard of the request.
			harness.Eventually(t, 30*time.Second, func() error {
				for _, ev := range readAudit(t, kipAuditLogPath, marker) {
					if ev.ResponseStatus != nil && ev.ResponseStatus.Code == http.StatusUnauthorized {
						return nil
					}
				}
				return errorf("kip's audit log has no 401 for %s yet", marker)
			})
			if evs := readAudit(t, auditLogPath, marker); len(evs) > 0 {
				t.Errorf("the upstream saw %d events for a request kip should have refused, as %+v", len(evs), evs[0].ImpersonatedUser)
			}
		})
	}
}
