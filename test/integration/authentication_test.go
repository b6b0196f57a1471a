package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// Rule 1 of docs/security.md: every request is authenticated, and anonymous
// gets 401. Requests that prove no identity, or hide a credential where kip
// does not look, are refused with the code kube-apiserver would use.
// clientcerts_test.go holds the client certificate chains.

// TestHostileRequestsAreRefused sends requests that try to choose their own
// identity, or prove none, and expects kip to refuse each with the code
// kube-apiserver itself would use and a Status body, before anything runs.
func TestHostileRequestsAreRefused(t *testing.T) {
	caller := harness.UniqueName("hostile")
	callerCert := rawUserCert(t, caller)
	token := harness.UniqueName("garbage-token")

	strangerCA, err := pki.NewCA("hostile-unknown-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	masters := []string{"system:masters"}
	forged := rawClientCert(t, strangerCA, pki.ClientCertRequest{CommonName: "kip-admin", Organizations: masters})
	expired := rawClientCert(t, stack.Cluster.ClientCA, pki.ClientCertRequest{
		CommonName: caller, Organizations: masters, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour),
	})
	notYetValid := rawClientCert(t, stack.Cluster.ClientCA, pki.ClientCertRequest{
		CommonName: caller, Organizations: masters, NotBefore: now.Add(time.Hour),
	})
	serverOnly := rawClientCert(t, stack.Cluster.ClientCA, pki.ClientCertRequest{
		CommonName: caller, Organizations: masters, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})

	tests := []struct {
		name      string
		cert      *tls.Certificate
		header    []rawHeader
		http1Only bool // the header is one HTTP/2 forbids
		wantCode  int  // 0: any refusal, 400 or above
	}{
		// Nested impersonation without the right to it: the upstream's
		// SubjectAccessReview says no.
		{name: "impersonate a user", cert: callerCert,
			header: []rawHeader{{"Impersonate-User", "someone"}}, wantCode: http.StatusForbidden},
		{name: "impersonate a user in lower case", cert: callerCert,
			header: []rawHeader{{"impersonate-user", "someone"}}, wantCode: http.StatusForbidden},
		{name: "impersonate system:masters", cert: callerCert,
			header: []rawHeader{{"Impersonate-User", "someone"}, {"impersonate-group", "system:masters"}}, wantCode: http.StatusForbidden},
		{name: "impersonate a uid in upper case", cert: callerCert,
			header: []rawHeader{{"Impersonate-User", "someone"}, {"IMPERSONATE-UID", "x"}}, wantCode: http.StatusForbidden},
		{name: "impersonate an extra", cert: callerCert,
			header: []rawHeader{{"Impersonate-User", "someone"}, {"Impersonate-Extra-Scopes", "x"}}, wantCode: http.StatusForbidden},
		{name: "impersonate a user named in Connection", cert: callerCert, http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User"}, {"Impersonate-User", "someone"}}, wantCode: http.StatusForbidden},
		// The impersonation filter refuses a group, uid or extra without a
		// user as a malformed request.
		{name: "impersonate system:masters without a user", cert: callerCert,
			header: []rawHeader{{"Impersonate-Group", "system:masters"}}, wantCode: http.StatusBadRequest},
		{name: "impersonate a uid without a user", cert: callerCert,
			header: []rawHeader{{"Impersonate-Uid", "x"}}, wantCode: http.StatusBadRequest},
		{name: "impersonate an extra without a user", cert: callerCert,
			header: []rawHeader{{"Impersonate-Extra-Scopes", "x"}}, wantCode: http.StatusBadRequest},
		// Impersonation headers the filter above does not consume (an empty
		// user, a kind it does not know) are the caller's mistake: 400.
		{name: "empty user", cert: callerCert, header: []rawHeader{{"Impersonate-User", ""}}, wantCode: http.StatusBadRequest},
		{name: "unknown impersonation header", cert: callerCert, header: []rawHeader{{"Impersonate-Foo", "x"}}, wantCode: http.StatusBadRequest},
		// No identity kip can prove: 401, never anonymous.
		{name: "no credentials", wantCode: http.StatusUnauthorized},
		{name: "random bearer token",
			header: []rawHeader{{"Authorization", "Bearer " + token}}, wantCode: http.StatusUnauthorized},
		{name: "random bearer token named in Connection", http1Only: true,
			header: []rawHeader{{"Connection", "Authorization"}, {"Authorization", "Bearer " + token}}, wantCode: http.StatusUnauthorized},
		{name: "impersonation without credentials",
			header: []rawHeader{{"Impersonate-User", "kip-admin"}, {"Impersonate-Group", "system:masters"}}, wantCode: http.StatusUnauthorized},
		{name: "spoofed front-proxy identity without credentials",
			header: []rawHeader{{"X-Remote-User", "kip-admin"}, {"X-Remote-Group", "system:masters"}}, wantCode: http.StatusUnauthorized},
		{name: "system:masters certificate from an unknown CA", cert: forged, wantCode: http.StatusUnauthorized},
		{name: "expired certificate", cert: expired, wantCode: http.StatusUnauthorized},
		{name: "certificate not yet valid", cert: notYetValid, wantCode: http.StatusUnauthorized},
		{name: "certificate for server auth only", cert: serverOnly, wantCode: http.StatusUnauthorized},
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			for _, tt := range tests {
				if tt.http1Only && proto != rawHTTP1 {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					client := rawClient(t, proto, tt.cert)
					res := rawDo(t, client, proto, rawRequest{path: mastersOnly, header: tt.header})
					code := tt.wantCode
					if code == 0 {
						if res.code < http.StatusBadRequest {
							t.Fatalf("got %d, want a refusal: %s", res.code, res.body)
						}
						code = res.code
					}
					st := mustRawStatus(t, res, code)
					// Nothing about why a credential failed is echoed back.
					if bytes.Contains(res.body, []byte(token)) {
						t.Errorf("the answer echoes the caller's token: %s", res.body)
					}
					t.Logf("%d %s: %s", st.Code, st.Reason, st.Message)
				})
			}
		})
	}
}

// TestAdversarialCredentialPlacement puts a valid ServiceAccount token
// everywhere but the Authorization header: kip, like kube-apiserver (asked
// directly as a control), reads a bearer token only from the first
// Authorization field and from the bearer subprotocol of a real WebSocket
// upgrade. Anywhere else the token proves nothing: 401 alone, or the
// certificate's identity beside one.
func TestAdversarialCredentialPlacement(t *testing.T) {
	ns := createNamespace(t)
	const account = "adversarial"
	token := serviceAccountToken(t, ns, account)
	saUser := "system:serviceaccount:" + ns + ":" + account
	caller := harness.UniqueName("adv-cred")
	bearer := "Bearer " + token
	subprotocol := "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(token))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(account+":"+token))

	cert := rawUserCert(t, caller)
	// kube-apiserver here lets anonymous requests in, and its RBAC gives
	// system:anonymous nothing: its 403 shows it did not read the token
	// either. kip has no anonymous user and answers 401.
	const anonymous = http.StatusForbidden
	cases := []adversarialCase{
		// The control: the token is valid where it belongs, so the 401s
		// below are about where it was put.
		{name: "token in Authorization",
			header: []rawHeader{{"Authorization", bearer}}, wantCode: http.StatusCreated, wantUser: saUser},
		{name: "token in ?access_token", query: "?access_token=" + token, wantCode: http.StatusUnauthorized, upstreamCode: anonymous},
		{name: "token in ?access_token beside a certificate", cert: true,
			query: "?access_token=" + token, wantCode: http.StatusCreated, wantUser: caller},
		{name: "token in a bearer subprotocol on a plain request",
			header: []rawHeader{{"Sec-WebSocket-Protocol", subprotocol}}, wantCode: http.StatusUnauthorized, upstreamCode: anonymous},
		{name: "token in a bearer subprotocol with Upgrade: websocket but no Connection: Upgrade", http1Only: true,
			header: []rawHeader{{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Protocol", subprotocol}}, wantCode: http.StatusUnauthorized},
		{name: "token in a bearer subprotocol beside a certificate", cert: true,
			header: []rawHeader{{"Sec-WebSocket-Protocol", subprotocol}}, wantCode: http.StatusCreated, wantUser: caller},
		{name: "token in Proxy-Authorization",
			header: []rawHeader{{"Proxy-Authorization", bearer}}, wantCode: http.StatusUnauthorized, upstreamCode: anonymous},
		{name: "token as Basic credentials",
			header: []rawHeader{{"Authorization", basic}}, wantCode: http.StatusUnauthorized, upstreamCode: anonymous},
		// Only the first Authorization field is read, as kube-apiserver
		// does. (rawHeader names that differ only in case would go out in
		// map order, so both fields use one spelling.)
		{name: "token in Authorization twice, garbage first",
			header: []rawHeader{{"Authorization", "Bearer garbage"}, {"Authorization", bearer}}, wantCode: http.StatusUnauthorized},
		{name: "token in Authorization twice, valid first: the first is used",
			header: []rawHeader{{"Authorization", bearer}, {"Authorization", "Bearer garbage"}}, wantCode: http.StatusCreated, wantUser: saUser},
		{name: "token in X-Remote-User",
			header: []rawHeader{{"X-Remote-User", token}}, wantCode: http.StatusUnauthorized, upstreamCode: anonymous},
		// Hop-by-hop: the caller's own pass-through token survives being
		// named in Connection, because kip sets it after that removal.
		{name: "token in Authorization named in Connection", http1Only: true,
			header: []rawHeader{{"Connection", "Authorization"}, {"Authorization", bearer}}, wantCode: http.StatusCreated, wantUser: saUser},
		{name: "token in Authorization, Connection naming every identity header", http1Only: true,
			header: []rawHeader{{"Connection", "Authorization, Impersonate-User, X-Forwarded-For, X-Remote-User"}, {"Authorization", bearer}}, wantCode: http.StatusCreated, wantUser: saUser},
	}
	runAdversarialCases(t, cert, cases)
	compareWithUpstream(t, cert, cases)
}
