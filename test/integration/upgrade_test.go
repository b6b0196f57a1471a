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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

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

	eventually(t, 30*time.Second, func() error {
		for _, ev := range readAudit(t, kipAuditLogPath, marker) {
			if ev.Stage == auditv1.StageResponseStarted && ev.User.Username == user {
				return nil
			}
		}
		return fmt.Errorf("no ResponseStarted event for the open watch in kip's audit log")
	})
}
