package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// Rule 5 of docs/security.md: a failed upgrade is never spliced, and
// redirects are returned, not followed.

// TestRefusedUpgradeIsNeverSpliced is the regression test for
// CVE-2018-1002105. An upgrade that the upstream refuses must not turn the
// caller's connection into a raw pipe to the upstream, because that pipe
// would carry kip's own credentials. The caller sends an exec upgrade it is
// not allowed, then a second raw request on the same connection: kip must
// authenticate that one again as the caller, or close the connection.
func TestRefusedUpgradeIsNeverSpliced(t *testing.T) {
	ns := createNamespace(t)
	caller := harness.UniqueName("attacker")
	for _, upgrade := range []string{"SPDY/3.1", "websocket"} {
		for _, second := range []struct {
			name   string
			header string
		}{
			{"plain", ""},
			{"asking for masters", "Impersonate-User: kip-admin\r\nImpersonate-Group: system:masters\r\n"},
		} {
			t.Run(upgrade+"/"+second.name, func(t *testing.T) {
				conn, err := tls.Dial("tcp", strings.TrimPrefix(stack.KipURL, "https://"), userTLS(t, caller))
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = conn.Close() }()
				_ = conn.SetDeadline(time.Now().Add(time.Minute))
				r := bufio.NewReader(conn)

				if _, err := fmt.Fprintf(conn, "GET /api/v1/namespaces/%s/pods/nopod/exec?command=sh&stdin=true&stdout=true HTTP/1.1\r\n"+
					"Host: kip\r\nConnection: Upgrade\r\nUpgrade: %s\r\n"+
					"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"+
					"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
					"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n", ns, upgrade); err != nil {
					t.Fatal(err)
				}
				first, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, first.Body)
				_ = first.Body.Close()
				if first.StatusCode != http.StatusForbidden {
					t.Fatalf("the refused upgrade answered %s, want 403", first.Status)
				}

				// A failed write means kip closed the connection, which the
				// read below takes as a pass.
				_, _ = fmt.Fprintf(conn, "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: kip\r\n%s\r\n", second.header)
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					return // closed: nothing was piped
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Fatalf("the second request on the connection listed secrets: %s", body)
				}
				var status metav1.Status
				if err := json.Unmarshal(body, &status); err != nil {
					t.Fatalf("want a Status, got %s: %s", resp.Status, body)
				}
				if strings.Contains(status.Message, devstack.KipUser) || !strings.Contains(status.Message, caller) {
					t.Fatalf("the second request ran as someone other than %s: %s", caller, status.Message)
				}
			})
		}
	}
}

// TestAdversarialUpgradeThenRequest sends upgrades that the upstream does
// not turn into a stream (a 404 for a pod that does not exist, a 403 for a
// token without rights, a 200 for a request that cannot be upgraded), then
// a raw second request on the same connection. The second must be a request
// of its own: served as the connection's caller, or refused for lack of a
// credential, or the connection closed. Never spliced to the upstream,
// where it would run as kip. TestRefusedUpgradeIsNeverSpliced covers an
// exec that RBAC refuses a certificate caller.
func TestAdversarialUpgradeThenRequest(t *testing.T) {
	ns := createNamespace(t)
	caller := harness.UniqueName("adv-upgrade")
	grant(t, ns, userSubject(caller), append([]rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
	}, configMapRules...)...)
	const account = "adversarial-upgrade"
	token := serviceAccountToken(t, ns, account)
	cert := rawUserCert(t, caller)
	exec := "GET /api/v1/namespaces/" + ns + "/pods/nopod/exec?command=sh&stdin=true&stdout=true HTTP/1.1\r\nHost: kip\r\n"
	list := "GET /api/v1/namespaces/" + ns + "/configmaps HTTP/1.1\r\nHost: kip\r\n"
	upgrades := map[string]string{
		"SPDY/3.1":  "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n",
		"websocket": "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n",
		"h2c":       "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
	}
	tests := []struct {
		name    string
		cert    bool
		first   string
		upgrade string
		want    int // the first answer; the second is checkSecondRequest's
	}{
		{name: "exec on a missing pod, allowed", cert: true, first: exec, upgrade: "SPDY/3.1", want: http.StatusNotFound},
		{name: "exec on a missing pod, allowed", cert: true, first: exec, upgrade: "websocket", want: http.StatusNotFound},
		{name: "exec refused for a token", first: exec + "Authorization: Bearer " + token + "\r\n", upgrade: "SPDY/3.1", want: http.StatusForbidden},
		{name: "exec refused for a token", first: exec + "Authorization: Bearer " + token + "\r\n", upgrade: "websocket", want: http.StatusForbidden},
		{name: "exec with a token kip refuses", first: exec + "Authorization: Bearer garbage\r\n", upgrade: "websocket", want: http.StatusUnauthorized},
		{name: "plain list asking for an upgrade", cert: true, first: list, upgrade: "websocket", want: http.StatusOK},
		{name: "plain list asking for an upgrade", cert: true, first: list, upgrade: "h2c", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.upgrade, func(t *testing.T) {
			var c *rawConn
			if tt.cert {
				c = dialKip(t, cert)
			} else {
				c = dialKip(t, nil)
			}
			c.send(tt.first + upgrades[tt.upgrade] + "\r\n")
			res, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			if res.code != tt.want {
				t.Fatalf("the upgrade answered %d, want %d: %.300s", res.code, tt.want, res.body)
			}
			if res.code != http.StatusOK {
				if _, err := rawStatus(res, tt.want); err != nil {
					t.Fatal(err)
				}
			}
			c.send("GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: kip\r\nImpersonate-User: " + devstack.KipUser + "\r\n\r\n")
			second, err := c.next()
			if err != nil {
				t.Logf("kip closed the connection after the %d: %v", res.code, err)
				return // nothing was spliced
			}
			checkSecondRequest(t, second, tt.cert, caller)
			t.Logf("the second request was answered on its own: %d", second.code)
		})
	}
}

// checkSecondRequest checks the answer to the request sent after a
// failed upgrade: never 200, and run as the connection's own caller.
func checkSecondRequest(t *testing.T, res rawResponse, cert bool, caller string) {
	t.Helper()
	if res.code == http.StatusOK {
		t.Fatalf("the second request listed Secrets: %.300s", res.body)
	}
	if !cert {
		mustRawStatus(t, res, http.StatusUnauthorized)
		return
	}
	// The caller may not impersonate kip: the impersonation filter's 403
	// names the caller, not kip.
	st := mustRawStatus(t, res, http.StatusForbidden)
	if !strings.Contains(st.Message, caller) {
		t.Fatalf("the second request did not run as %s: %s", caller, st.Message)
	}
}

// TestAdversarialRedirectIsReturned has kube-apiserver itself answer a
// redirect: pods/proxy with no sub-path is sent on to the same path with a
// trailing slash (301), before anything is dialled. kip must return that
// answer as it is and not follow it with its own credentials: the
// upstream's audit log must hold the request without the slash only.
func TestAdversarialRedirectIsReturned(t *testing.T) {
	ns := createNamespace(t)
	caller := harness.UniqueName("adv-redirect")
	grant(t, ns, userSubject(caller), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/proxy"}, Verbs: []string{"get"}})
	pod := harness.UniqueName("redirect")
	createPodWithIP(t, ns, pod)
	path := "/api/v1/namespaces/" + ns + "/pods/" + pod + "/proxy"

	// The control: kube-apiserver redirects when asked directly.
	if code := directCode(t, directClient(t, caller), path); code != http.StatusMovedPermanently {
		t.Fatalf("kube-apiserver answered %d directly, want 301; this test proves nothing", code)
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			client := rawClient(t, proto, rawUserCert(t, caller))
			hr, err := http.NewRequest(http.MethodGet, stack.KipURL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != path+"/" {
				t.Fatalf("got %s Location %q, want 301 to %s/", resp.Status, resp.Header.Get("Location"), path)
			}
		})
	}
	for _, ev := range auditEvents(t, pod) {
		if strings.HasSuffix(ev.RequestURI, "/proxy/") {
			t.Errorf("the redirect was followed: the upstream saw %s as %s impersonating %+v", ev.RequestURI, ev.User.Username, ev.ImpersonatedUser)
		}
	}
}

// createPodWithIP creates a Pod whose status gives it an address that is
// not loopback, so that kube-apiserver agrees to proxy to it. No test
// traffic goes there: the redirect is answered before any dial.
func createPodWithIP(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	pods := adminClient(t).CoreV1().Pods(ns)
	pod := podWith(name)
	pod.Spec.NodeName = "adversarial-node"
	pod.Spec.Containers[0].Image = "testnode.invalid/ignored"
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 1}}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// TEST-NET-1 (RFC 5737): documentation only, never routed.
	created.Status.PodIP = "192.0.2.10"
	created.Status.PodIPs = []corev1.PodIP{{IP: "192.0.2.10"}}
	created.Status.HostIP = "192.0.2.11"
	created.Status.HostIPs = []corev1.HostIP{{IP: "192.0.2.11"}}
	if _, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
