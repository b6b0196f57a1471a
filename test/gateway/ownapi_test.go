package gateway

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestOwnAPIHasOneSpelling asks for kip's own API (login.kip.dev: the
// cluster list, and the path of the credential exchange, which takes no
// credentials) under /clusters/alpha/, as a signed-in user and
// anonymously, over HTTP/1.1 and HTTP/2.
//
// Verdict: kip answers its own 404 Status ("kip's own API is served at
// kip's root") before authentication, and alpha's audit log shows none of
// these requests; at kip's root the list is served. Before this was
// refused, routing stripped /clusters/alpha and the list, or an exchange,
// answered under the cluster's path too: a second way to reach the one
// endpoint an anonymous caller may use. kube-apiserver has no such prefix
// to compare with.
func TestOwnAPIHasOneSpelling(t *testing.T) {
	marker := harness.UniqueName("own-api")
	user := userTLS(t, harness.UniqueName("own-api-user"))
	for _, proto := range []string{"http/1.1", "h2"} {
		for who, cert := range map[string]tls.Certificate{"signed in": user, "anonymous": {}} {
			t.Run(proto+", "+who, func(t *testing.T) {
				client := gw.httpClient(cert, proto)
				for _, path := range []string{
					"/clusters/alpha" + clustersPath + "?m=" + marker,
					"/clusters/alpha/apis/login.kip.dev/v1alpha1/tokencredentialrequests?m=" + marker,
					"/clusters/alpha/apis%2Flogin.kip.dev/v1alpha1/tokencredentialrequests?m=" + marker,
				} {
					a := mustGet(t, client, path, "")
					wantStatus(t, a, http.StatusNotFound)
					if !strings.Contains(a.status.Message, "kip's own API is served at kip's root") {
						t.Fatalf("%s: %q is not kip's answer", path, a.status.Message)
					}
				}
			})
		}
	}
	t.Run("at kip's root", func(t *testing.T) {
		a := mustGet(t, gw.httpClient(user, "h2"), clustersPath, "")
		if a.code != http.StatusOK || !strings.Contains(a.body, `"ClusterList"`) {
			t.Fatalf("the list at kip's root: %s", a)
		}
	})
	wantUnseen(t, alpha, marker)
}
