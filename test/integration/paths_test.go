package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// Rule 2 of docs/security.md, for the path: dot segments, encoded dots and
// slashes reach the upstream byte for byte and never kip's own endpoints.

// TestAdversarialPaths sends paths with dot segments, encoded dots and
// slashes and doubled slashes. kip forwards each unchanged (the upstream's
// audit log holds the very request URI sent) and leaves the answer to the
// upstream: through kip it is the code kube-apiserver gives the same
// caller directly. Without credentials every spelling, including those
// that clean to a health endpoint, gets kip's 401.
func TestAdversarialPaths(t *testing.T) {
	ns := createNamespace(t)
	caller := harness.UniqueName("adv-paths")
	grant(t, ns, userSubject(caller), configMapRules...)
	const name = "target"
	if _, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(context.Background(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cms := "/api/v1/namespaces/" + ns + "/configmaps"
	paths := []string{
		cms + "/" + name, // the control: 200
		cms + "/../configmaps/" + name,
		cms + "/%2e%2e/configmaps/" + name,
		cms + "/%2E%2E/configmaps/" + name,
		cms + "/./" + name,
		cms + "//" + name,
		"/" + cms + "/" + name,
		cms + "%2F" + name,
		cms + "/" + name + "%2F",
		"/api/v1/namespaces/kube-system/../" + ns + "/configmaps/" + name,
		"/api/v1/namespaces/kube-system/secrets/../../../namespaces/" + ns + "/configmaps/" + name,
		"/api/v1/namespaces/" + ns + "/configmaps/%2e%2e%2f%2e%2e%2fsecrets",
		"/api/../readyz",
		"/apis/%2e%2e/livez",
		"/readyz/../api/v1/namespaces/" + ns + "/configmaps/" + name,
	}
	direct := directClient(t, caller)
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			withCert, without := rawClient(t, proto, rawUserCert(t, caller)), rawClient(t, proto, nil)
			for _, path := range paths {
				t.Run(path, func(t *testing.T) {
					mustRawStatus(t, rawDo(t, without, proto, rawRequest{path: path}), http.StatusUnauthorized)
					marker := harness.UniqueName("path")
					sent := path + "?adversarial=" + marker
					want := directCode(t, direct, sent)
					res := rawDo(t, withCert, proto, rawRequest{path: sent})
					if res.code != want {
						t.Fatalf("through kip: %d, directly: %d: %.300s", res.code, want, res.body)
					}
					ev := lastEvent(t, marker)
					if ev.RequestURI != sent {
						t.Errorf("the upstream saw %q, want %q unchanged", ev.RequestURI, sent)
					}
					if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != caller {
						t.Errorf("the upstream ran it as %+v, want %s", ev.ImpersonatedUser, caller)
					}
					t.Logf("%d", res.code)
				})
			}
		})
	}
}

// directClient reaches kube-apiserver directly as user, with a certificate
// from the cluster's CA, to learn what the upstream itself answers.
func directClient(t *testing.T, user string) *http.Client {
	t.Helper()
	cfg, err := stack.Cluster.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return client
}

// directCode is the status kube-apiserver answers GET path with, sent
// directly over client.
func directCode(t *testing.T, client *http.Client, path string) int {
	t.Helper()
	resp, err := client.Get(stack.Cluster.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// lastEvent returns the upstream's ResponseComplete audit event of the
// request kip forwarded with marker in its URI (the direct one has no
// impersonated user).
func lastEvent(t *testing.T, marker string) auditv1.Event {
	t.Helper()
	var found *auditv1.Event
	harness.Eventually(t, 30*time.Second, func() error {
		for _, ev := range auditEvents(t, marker) {
			if ev.User.Username == devstack.KipUser {
				found = &ev
			}
		}
		if found == nil {
			return errors.New("no audit event of kip's request yet")
		}
		return nil
	})
	return *found
}
