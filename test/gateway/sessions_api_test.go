package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/sessions"
	"github.com/kip-proxy/kip/internal/sessionsapi"
)

// TestSessionsAPIPerCluster proves that a gateway serves each cluster's
// recorded sessions at that cluster only: a session recorded on alpha is
// listed and read at /clusters/alpha, for a user alpha's RBAC allows, and
// is absent at /clusters/beta, where the same user has the same Role; and
// the API is not served outside /clusters/.
func TestSessionsAPIPerCluster(t *testing.T) {
	ns := namespaceOn(t, alpha, beta)
	runner, kubeconfigs := clusterUser(t, ns, []string{alpha}, []string{"create", "pods", "--subresource=exec"}, streamingRules...)
	reader := harness.UniqueName("auditor")
	rules := rbacv1.PolicyRule{APIGroups: []string{"sessions.kip.dev"}, Resources: []string{"sessions", "sessions/recording"}, Verbs: []string{"get", "list"}}
	grant(t, alpha, ns, userSubject(reader), rules)
	grant(t, beta, ns, userSubject(reader), rules)

	pod := "sessions-api"
	runPod(t, alpha, ns, clusterPod(pod, alpha, 0))
	if out := mustKubectl(t, kubeconfigs[alpha], nil, "", "exec", "-n", ns, pod, "--", "sh", "-c", `echo "$CLUSTER"`); out != alpha+"\n" {
		t.Fatalf("kubectl exec at alpha wrote %q", out)
	}
	assertRecorded(t, recording.Identity{User: runner, Cluster: alpha, Namespace: ns, Pod: pod, Subresource: "exec"}, alpha+"\n")

	ctx := context.Background()
	atAlpha, atBeta := sessionsAt(t, alpha, reader), sessionsAt(t, beta, reader)
	var id string
	harness.Eventually(t, 30*time.Second, func() error {
		list, err := atAlpha.List(ctx, ns, sessions.Filter{User: runner})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 || list.Items[0].Spec.Cluster != alpha || list.Items[0].Spec.Pod != pod {
			return errorf("sessions of %s at alpha: %+v, want the one exec", runner, list.Items)
		}
		id = list.Items[0].Name
		return nil
	})
	rc, err := atAlpha.Recording(ctx, ns, id)
	if err != nil {
		t.Fatalf("the recording at alpha: %v", err)
	}
	data, _ := io.ReadAll(rc)
	_ = rc.Close()
	if !strings.Contains(string(data), `"o", "`+alpha+`\n"`) {
		t.Errorf("the recording read at alpha does not hold the command's output:\n%s", data)
	}

	harness.Eventually(t, 30*time.Second, func() error {
		list, err := atBeta.List(ctx, ns, sessions.Filter{})
		if err != nil {
			return err
		}
		if len(list.Items) != 0 {
			return errorf("beta lists alpha's sessions: %+v", list.Items)
		}
		return nil
	})
	if _, err := atBeta.Recording(ctx, ns, id); !apierrors.IsNotFound(err) {
		t.Errorf("alpha's recording read at beta = %v, want 404", err)
	}
	if _, err := atBeta.Get(ctx, ns, id); !apierrors.IsNotFound(err) {
		t.Errorf("alpha's session read at beta = %v, want 404", err)
	}

	client := gw.httpClient(userTLS(t, reader), "h2")
	a := mustGet(t, client, "/apis/sessions.kip.dev/v1alpha1/namespaces/"+ns+"/sessions", "")
	wantStatus(t, a, http.StatusNotFound)
}

// sessionsAt is a sessions API client for user at cluster.
func sessionsAt(t *testing.T, cluster, user string) *sessionsapi.Client {
	t.Helper()
	c, err := sessionsapi.NewClient(userConfig(t, cluster, user))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
