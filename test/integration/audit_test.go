package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/headers"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// The test client reaches kip, and kip the upstream, over loopback.
const loopback = "127.0.0.1"

// TestAuditRecordsTheRealCaller reads one GET made through kip in both
// audit logs, with and without `--as`. kip's log names the caller kip
// authenticated, the identity it impersonates for them, the source IP,
// verb, object and code. The upstream's log names kip as the authenticated
// user and the caller as the impersonated one, with the source IP kip
// forwarded and, under --as, the original caller in an extra.
// TestLongRunningRequestsAreAuditedWhenTheResponseStarts covers watches at
// ResponseStarted, and TestHostileForwardingHeadersDoNotReachAudit the
// source IPs a caller tries to forge.
func TestAuditRecordsTheRealCaller(t *testing.T) {
	ns := createNamespace(t)
	boss, victim := harness.UniqueName("auditor"), harness.UniqueName("audited")
	grant(t, ns, userSubject(victim), configMapRules...)
	grant(t, ns, userSubject(boss), configMapRules...)
	grantCluster(t, userSubject(boss),
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{victim}})

	tests := []struct {
		name string
		// as is the user the caller impersonates with --as; empty for none.
		as string
		// upstreamUser is who the upstream acts as.
		upstreamUser string
	}{
		{name: "own identity", upstreamUser: boss},
		{name: "kubectl --as", as: victim, upstreamUser: victim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := harness.UniqueName("audit-marker")
			if _, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(context.Background(),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: marker}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			cfg := stack.UserConfigFor(boss, "auditors")
			cfg.Impersonate.UserName = tt.as
			client := kubernetes.NewForConfigOrDie(cfg)
			// The impersonation check's answer may take a moment to follow
			// the new binding.
			harness.Eventually(t, 30*time.Second, func() error {
				_, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), marker, metav1.GetOptions{})
				return err
			})

			kipEvent := lastComplete(t, kipAuditLogPath, marker)
			checkEvent(t, "kip", kipEvent, ns, marker)
			if kipEvent.User.Username != boss || !slices.Contains(kipEvent.User.Groups, "auditors") {
				t.Errorf("kip's audit log: user %+v, want the caller %s in auditors", kipEvent.User, boss)
			}
			switch {
			case tt.as == "" && kipEvent.ImpersonatedUser != nil:
				t.Errorf("kip's audit log: impersonated user %+v without --as", kipEvent.ImpersonatedUser)
			case tt.as != "" && (kipEvent.ImpersonatedUser == nil || kipEvent.ImpersonatedUser.Username != tt.as):
				t.Errorf("kip's audit log: impersonated user %+v, want %s", kipEvent.ImpersonatedUser, tt.as)
			}

			upstream := lastComplete(t, auditLogPath, marker)
			checkEvent(t, "the upstream", upstream, ns, marker)
			if upstream.User.Username != devstack.KipUser {
				t.Errorf("the upstream's audit log: user %q, want kip's own %q", upstream.User.Username, devstack.KipUser)
			}
			if upstream.ImpersonatedUser == nil || upstream.ImpersonatedUser.Username != tt.upstreamUser {
				t.Fatalf("the upstream's audit log: impersonated user %+v, want %s", upstream.ImpersonatedUser, tt.upstreamUser)
			}
			original := upstream.ImpersonatedUser.Extra[headers.OriginalUserExtraKey]
			if tt.as == "" {
				if original != nil {
					t.Errorf("the upstream's audit log names an original caller without --as: %v", original)
				}
				return
			}
			var who authenticationv1.UserInfo
			if len(original) != 1 || json.Unmarshal([]byte(original[0]), &who) != nil || who.Username != boss {
				t.Errorf("the upstream's audit log: original caller %q, want %s", original, boss)
			}
		})
	}
}

// checkEvent checks what every audit event of the GET must hold.
func checkEvent(t *testing.T, log string, ev auditv1.Event, ns, name string) {
	t.Helper()
	if ev.Verb != "get" || ev.ObjectRef == nil || ev.ObjectRef.Resource != "configmaps" || ev.ObjectRef.Namespace != ns || ev.ObjectRef.Name != name {
		t.Errorf("%s's audit log: verb %q object %+v, want get configmaps %s/%s", log, ev.Verb, ev.ObjectRef, ns, name)
	}
	if ev.ResponseStatus == nil || ev.ResponseStatus.Code != http.StatusOK {
		t.Errorf("%s's audit log: response %+v, want 200", log, ev.ResponseStatus)
	}
	if len(ev.SourceIPs) == 0 || ev.SourceIPs[0] != loopback {
		t.Errorf("%s's audit log: source IPs %v, want the client's %s first", log, ev.SourceIPs, loopback)
	}
}

// lastComplete waits for the ResponseComplete event of a request whose
// URI contains marker in the audit log at path, and returns the last one.
func lastComplete(t *testing.T, path, marker string) auditv1.Event {
	t.Helper()
	var found []auditv1.Event
	harness.Eventually(t, 30*time.Second, func() error {
		found = slices.DeleteFunc(readAudit(t, path, marker), func(ev auditv1.Event) bool {
			return ev.Stage != auditv1.StageResponseComplete || !strings.HasSuffix(ev.RequestURI, "/"+marker)
		})
		if len(found) == 0 {
			return fmt.Errorf("no ResponseComplete event for %s in %s", marker, path)
		}
		// Earlier tries of the harness.Eventually above may have been refused.
		if last := found[len(found)-1]; last.ResponseStatus == nil || last.ResponseStatus.Code != http.StatusOK {
			return fmt.Errorf("the last event for %s in %s has status %+v", marker, path, last.ResponseStatus)
		}
		return nil
	})
	return found[len(found)-1]
}

// TestLongRunningRequestsAreAuditedWhenTheResponseStarts proves kip's audit
// log records a watch at ResponseStarted, while the watch is still open.
func TestLongRunningRequestsAreAuditedWhenTheResponseStarts(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("audited")
	grant(t, ns, userSubject(user), configMapRules...)
	cfg := stack.UserConfigFor(user)
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	marker := harness.UniqueName("watch-marker")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, stack.KipURL+"/api/v1/namespaces/"+ns+"/configmaps?watch=true&labelSelector="+marker, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()

	harness.Eventually(t, 30*time.Second, func() error {
		for _, ev := range readAudit(t, kipAuditLogPath, marker) {
			if ev.Stage == auditv1.StageResponseStarted && ev.User.Username == user {
				return nil
			}
		}
		return fmt.Errorf("no ResponseStarted event for the open watch in kip's audit log")
	})
}
