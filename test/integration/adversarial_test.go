package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/headers"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// This file is kip's adversarial suite against the real kube-apiserver:
// requests written byte by byte, or header by header, that try to choose
// their own identity, to hide a credential where kip does not look, to
// desynchronise HTTP/1.1 framing, to reach a path kip treats specially, or
// to turn a refused upgrade into a pipe. Each case states its exact
// outcome: the status, and for a served request the identity the upstream
// saw. TestHostileRequestsAreRefused, TestHostileHeadersDoNotChangeWhoRuns,
// TestHostileForwardingHeadersDoNotReachAudit and
// TestRefusedUpgradeIsNeverSpliced hold the cases this file does not repeat.

const (
	ssrPath = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
	ssrBody = `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
)

// reviewedUser decodes the SelfSubjectReview answer in body: who the
// upstream says the request ran as.
func reviewedUser(body []byte) (authenticationv1.UserInfo, error) {
	var review authenticationv1.SelfSubjectReview
	if err := json.Unmarshal(body, &review); err != nil {
		return authenticationv1.UserInfo{}, fmt.Errorf("decoding the SelfSubjectReview: %w: %.300s", err, body)
	}
	if review.Kind != "SelfSubjectReview" || review.Status.UserInfo.Username == "" {
		return authenticationv1.UserInfo{}, fmt.Errorf("not a SelfSubjectReview with a user: %.300s", body)
	}
	return review.Status.UserInfo, nil
}

// checkServedAs fails unless res is a 201 SelfSubjectReview naming user,
// and not kip's own account or system:masters.
func checkServedAs(res rawResponse, user string) error {
	if res.code != http.StatusCreated {
		return fmt.Errorf("got %d, want 201 as %s: %.300s", res.code, user, res.body)
	}
	got, err := reviewedUser(res.body)
	if err != nil {
		return err
	}
	if got.Username != user {
		return fmt.Errorf("the upstream saw user %q, want %q", got.Username, user)
	}
	if got.Username == devstack.KipUser || slices.Contains(got.Groups, "system:masters") {
		return fmt.Errorf("the request ran with kip's or masters' rights: %+v", got)
	}
	return nil
}

// adversarialCase is one request through a rawClient and its exact outcome.
type adversarialCase struct {
	name      string
	cert      bool   // present the caller's client certificate
	query     string // added to the path, with its '?'
	header    []rawHeader
	http1Only bool // the request needs a header HTTP/2 forbids (Connection, Upgrade)
	// wantCode is the status. For 201 the upstream's SelfSubjectReview
	// must name wantUser; any other code must be a metav1.Status.
	wantCode int
	wantUser string
	// upstreamCode is what kube-apiserver itself answers the same request,
	// where kip is stricter on purpose; 0 means wantCode.
	upstreamCode int
}

// runAdversarialCases sends each case as a SelfSubjectReview over HTTP/1.1
// and HTTP/2 and checks its outcome.
func runAdversarialCases(t *testing.T, cert *tls.Certificate, cases []adversarialCase) {
	t.Helper()
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			withCert, without := rawClient(t, proto, cert), rawClient(t, proto, nil)
			for _, tc := range cases {
				if tc.http1Only && proto != rawHTTP1 {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					client := without
					if tc.cert {
						client = withCert
					}
					req := selfSubjectReview
					req.path += tc.query
					req.header = tc.header
					res := rawDo(t, client, proto, req)
					if tc.wantCode == http.StatusCreated {
						if err := checkServedAs(res, tc.wantUser); err != nil {
							t.Fatal(err)
						}
						return
					}
					st := mustRawStatus(t, res, tc.wantCode)
					t.Logf("%d %s: %s", st.Code, st.Reason, st.Message)
				})
			}
		})
	}
}

// TestAdversarialImpersonationHeaders sends Impersonate-* headers in every
// letter case, twice, empty and incomplete, from a caller that may
// impersonate exactly one user. Every spelling Go's server reads as an
// impersonation header goes through the SubjectAccessReview-checked filter:
// it takes effect only for the allowed user, the first value of a repeated
// Impersonate-User is the one checked and used, and the rest get 400 or
// 403. Each case sent straight to kube-apiserver gets the same answer, but
// for the empty headers that kip alone refuses.
func TestAdversarialImpersonationHeaders(t *testing.T) {
	const group = "adversarial-callers"
	caller, allowed := harness.UniqueName("adv-imp"), harness.UniqueName("adv-allowed")
	grantCluster(t, userSubject(caller), rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{allowed},
	})
	cert := rawUserCert(t, caller, group)
	waitForImpersonationRight(t, cert, allowed)

	const forbidden = "someone-else"
	cases := []adversarialCase{
		{name: "IMPERSONATE-USER in upper case, allowed user",
			header: []rawHeader{{"IMPERSONATE-USER", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "impersonate-user in lower case, allowed user",
			header: []rawHeader{{"impersonate-user", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "iMpErSoNaTe-UsEr in mixed case, allowed user",
			header: []rawHeader{{"iMpErSoNaTe-UsEr", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "iMpErSoNaTe-UsEr in mixed case, user not allowed",
			header: []rawHeader{{"iMpErSoNaTe-UsEr", forbidden}}, wantCode: http.StatusForbidden},
		{name: "IMPERSONATE-GROUP in upper case beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"IMPERSONATE-GROUP", "system:masters"}}, wantCode: http.StatusForbidden},
		{name: "iMpErSoNaTe-ExTrA-sCoPeS in mixed case beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"iMpErSoNaTe-ExTrA-sCoPeS", "x"}}, wantCode: http.StatusForbidden},
		{name: "IMPERSONATE-UID in upper case beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"IMPERSONATE-UID", "x"}}, wantCode: http.StatusForbidden},
		// Repeated and combined values.
		{name: "Impersonate-User twice, allowed user first: the first is checked and used",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-User", devstack.KipUser}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "Impersonate-User twice, allowed user second",
			header: []rawHeader{{"Impersonate-User", forbidden}, {"Impersonate-User", allowed}}, wantCode: http.StatusForbidden},
		{name: "two users in one Impersonate-User value",
			header: []rawHeader{{"Impersonate-User", allowed + ", " + forbidden}}, wantCode: http.StatusForbidden},
		// Groups, uids and extras without a user are malformed.
		{name: "impersonate-group in lower case without a user",
			header: []rawHeader{{"impersonate-group", "system:masters"}}, wantCode: http.StatusBadRequest},
		{name: "IMPERSONATE-EXTRA-SCOPES in upper case without a user",
			header: []rawHeader{{"IMPERSONATE-EXTRA-SCOPES", "x"}}, wantCode: http.StatusBadRequest},
		{name: "iMpErSoNaTe-UiD alone in mixed case",
			header: []rawHeader{{"iMpErSoNaTe-UiD", "x"}}, wantCode: http.StatusBadRequest},
		{name: "Impersonate-Group and Impersonate-Extra without a user",
			header: []rawHeader{{"Impersonate-Group", "system:masters"}, {"Impersonate-Extra-Scopes", "x"}}, wantCode: http.StatusBadRequest},
		// Empty values.
		// kube-apiserver ignores an empty header that asks for nothing;
		// kip refuses it (withUnusedImpersonationRefused).
		{name: "empty Impersonate-Uid alone",
			header: []rawHeader{{"Impersonate-Uid", ""}}, wantCode: http.StatusBadRequest, upstreamCode: http.StatusCreated},
		{name: "empty Impersonate-User beside a group",
			header: []rawHeader{{"Impersonate-User", ""}, {"Impersonate-Group", "system:masters"}}, wantCode: http.StatusBadRequest},
		{name: "empty Impersonate-User twice",
			header: []rawHeader{{"Impersonate-User", ""}, {"Impersonate-User", ""}}, wantCode: http.StatusBadRequest, upstreamCode: http.StatusCreated},
		{name: "empty Impersonate-Group beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-Group", ""}}, wantCode: http.StatusForbidden},
		{name: "empty Impersonate-Extra beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-Extra-Scopes", ""}}, wantCode: http.StatusForbidden},
		// The filter asks for no uid and removes the empty header with
		// the others, so it has no effect.
		{name: "empty Impersonate-Uid beside an allowed user",
			header: []rawHeader{{"Impersonate-User", allowed}, {"Impersonate-Uid", ""}}, wantCode: http.StatusCreated, wantUser: allowed},
		// Hop-by-hop: naming a header in Connection neither hides it from
		// the filter nor strips what kip sets in its place.
		{name: "allowed Impersonate-User named in Connection", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User"}, {"Impersonate-User", allowed}}, wantCode: http.StatusCreated, wantUser: allowed},
		{name: "Impersonate-Group named in Connection beside an allowed user", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-Group"}, {"Impersonate-User", allowed}, {"Impersonate-Group", "system:masters"}}, wantCode: http.StatusForbidden},
		{name: "Connection names Impersonate-User and X-Forwarded-For with no impersonation", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User, X-Forwarded-For, Authorization"}, {"X-Forwarded-For", "203.0.113.7"}}, wantCode: http.StatusCreated, wantUser: caller},
	}
	for i := range cases {
		cases[i].cert = true
	}
	runAdversarialCases(t, cert, cases)
	compareWithUpstream(t, cert, cases)
}

// compareWithUpstream sends each case (but those that need HTTP/1.1)
// straight to kube-apiserver, with the same certificate or none, and
// expects the answer kip gives, or upstreamCode where kip is stricter.
func compareWithUpstream(t *testing.T, cert *tls.Certificate, cases []adversarialCase) {
	t.Helper()
	t.Run("kube-apiserver directly", func(t *testing.T) {
		for _, tc := range cases {
			if tc.http1Only {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				want := tc.wantCode
				if tc.upstreamCode != 0 {
					want = tc.upstreamCode
				}
				req := selfSubjectReview
				req.path += tc.query
				req.header = tc.header
				var c *tls.Certificate
				if tc.cert {
					c = cert
				}
				if res := directRaw(t, c, req); res.code != want {
					t.Errorf("kube-apiserver answered %d, want %d: %.300s", res.code, want, res.body)
				} else if want == http.StatusCreated && tc.wantUser != "" && tc.upstreamCode == 0 {
					if err := checkServedAs(res, tc.wantUser); err != nil {
						t.Error(err)
					}
				}
			})
		}
	})
}

// directRaw sends req straight to kube-apiserver, presenting cert if any.
func directRaw(t *testing.T, cert *tls.Certificate, req rawRequest) rawResponse {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(stack.Cluster.AdminConfig.CAData) {
		t.Fatal("the cluster's serving CA is not valid PEM")
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	hr, err := http.NewRequest(req.method, stack.Cluster.URL+req.path, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	for _, h := range req.header {
		hr.Header[h.name] = append(hr.Header[h.name], h.value)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{code: resp.StatusCode, body: body}
}

// waitForImpersonationRight waits until the upstream lets the holder of
// cert impersonate user: RBAC takes a moment to follow a new binding.
func waitForImpersonationRight(t *testing.T, cert *tls.Certificate, user string) {
	t.Helper()
	client := rawClient(t, rawHTTP2, cert)
	req := selfSubjectReview
	req.header = []rawHeader{{"Impersonate-User", user}}
	eventually(t, 30*time.Second, func() error {
		res, err := rawTry(client, rawHTTP2, req)
		if err != nil {
			return err
		}
		return checkServedAs(res, user)
	})
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

// TestAdversarialFrontProxyHeaders sends front-proxy identity headers in
// forms the hostile tests do not: other letter cases, several values, a
// percent-encoded extra that names kip's own record of the original caller,
// and names listed in Connection. kube-apiserver here believes X-Remote-*
// from kip, so any that leaked would change the SelfSubjectReview.
func TestAdversarialFrontProxyHeaders(t *testing.T) {
	const group = "adversarial-callers"
	caller := harness.UniqueName("adv-remote")
	cert := rawUserCert(t, caller, group)
	originalKey := "X-Remote-Extra-" + strings.ReplaceAll(headers.OriginalUserExtraKey, ".", "%2E")
	forgedOriginal := `{"username":"kip-admin","groups":["system:masters"]}`
	tests := []struct {
		name      string
		header    []rawHeader
		http1Only bool
	}{
		{name: "upper case", header: []rawHeader{
			{"X-REMOTE-USER", "admin"}, {"X-REMOTE-GROUP", "system:masters"}, {"X-REMOTE-EXTRA-SCOPES", "x"}, {"X-REMOTE-UID", "admin-uid"}}},
		{name: "several values in mixed case", header: []rawHeader{
			{"x-ReMoTe-UsEr", "admin"}, {"x-ReMoTe-UsEr", "kip-admin"}, {"X-Remote-Group", "system:masters"}, {"X-Remote-Group", "system:nodes"}}},
		{name: "percent-encoded extra forging kip's original-caller record", header: []rawHeader{
			{"X-Remote-User", "admin"}, {originalKey, forgedOriginal}, {"X-Remote-Extra-" + headers.OriginalUserExtraKey, forgedOriginal}}},
		{name: "named in Connection", http1Only: true, header: []rawHeader{
			{"Connection", "X-Remote-User, X-Remote-Group"}, {"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"}}},
		{name: "beside a forwarded-for chain naming kip itself", header: []rawHeader{
			{"X-Remote-User", devstack.KipUser}, {"X-Forwarded-For", "127.0.0.1, 127.0.0.1"}, {"X-Forwarded-Proto", "http"}, {"X-Forwarded-Host", "kubernetes.default.svc"}}},
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			client := rawClient(t, proto, cert)
			for _, tt := range tests {
				if tt.http1Only && proto != rawHTTP1 {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					req := selfSubjectReview
					req.header = tt.header
					res := rawDo(t, client, proto, req)
					if res.code != http.StatusCreated {
						t.Fatalf("got %d, want 201: %s", res.code, res.body)
					}
					got, err := reviewedUser(res.body)
					if err != nil {
						t.Fatal(err)
					}
					assertOnlyCaller(t, got, caller, group)
				})
			}
		})
	}
}

// TestAdversarialForwardingHeadersOnPassThrough checks, in the upstream's
// audit log, that a caller whose own token kip passes through cannot put an
// address of its choosing among the source IPs either, including with
// X-Forwarded-For named in Connection.
// TestHostileForwardingHeadersDoNotReachAudit covers impersonated callers.
func TestAdversarialForwardingHeadersOnPassThrough(t *testing.T) {
	ns := createNamespace(t)
	const account = "adversarial-xff"
	token := serviceAccountToken(t, ns, account)
	saUser := "system:serviceaccount:" + ns + ":" + account
	spoofed := []string{"203.0.113.21", "203.0.113.22", "203.0.113.23"}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			client := rawClient(t, proto, nil)
			marker := harness.UniqueName("marker")
			header := []rawHeader{
				{"Authorization", "Bearer " + token},
				{"X-FORWARDED-FOR", spoofed[0]}, {"x-real-ip", spoofed[1]}, {"X-Forwarded-For", spoofed[2]},
				{"X-Remote-User", "admin"},
			}
			if proto == rawHTTP1 {
				header = append(header, rawHeader{"Connection", "X-Forwarded-For, X-Real-Ip"})
			}
			res := rawDo(t, client, proto, rawRequest{path: "/api/v1/namespaces/" + ns + "/configmaps/" + marker, header: header})
			// The account has no rights: the upstream, not kip, says 403.
			if st := mustRawStatus(t, res, http.StatusForbidden); !strings.Contains(st.Message, saUser) {
				t.Fatalf("the 403 does not name the account %s: %s", saUser, st.Message)
			}
			for _, ev := range auditEvents(t, marker) {
				if ev.User.Username != saUser || ev.ImpersonatedUser != nil {
					t.Errorf("audit event %s: user %q impersonating %+v, want the pass-through account %s alone", ev.AuditID, ev.User.Username, ev.ImpersonatedUser, saUser)
				}
				if len(ev.SourceIPs) == 0 || ev.SourceIPs[0] != loopback {
					t.Errorf("audit event %s: source IPs %v, want the client's %s first", ev.AuditID, ev.SourceIPs, loopback)
				}
				for _, ip := range ev.SourceIPs {
					if slices.Contains(spoofed, ip) {
						t.Errorf("audit event %s lists the spoofed source IP %s: %v", ev.AuditID, ip, ev.SourceIPs)
					}
				}
			}
		})
	}
}

// rawConn is one HTTP/1.1 connection to kip over TLS on which a test writes
// bytes exactly as it wants them framed.
type rawConn struct {
	conn *tls.Conn
	r    *bufio.Reader
}

// dialKip opens a raw HTTP/1.1 connection to kip that presents cert, if any.
func dialKip(t *testing.T, cert *tls.Certificate) *rawConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: kipRoots(t), NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(stack.KipURL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	// A liveness bound, not a timing assertion: kip must answer or close.
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	return &rawConn{conn: conn, r: bufio.NewReader(conn)}
}

// send writes data without waiting: kip may stop reading (an oversized
// header) or close the connection, and its answer is what the test reads.
func (c *rawConn) send(data string) {
	go func() { _, _ = io.WriteString(c.conn, data) }()
}

// next reads one answer; an error means kip closed the connection.
func (c *rawConn) next() (rawResponse, error) {
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return rawResponse{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rawResponse{}, fmt.Errorf("reading the body of a %d: %w", resp.StatusCode, err)
	}
	return rawResponse{code: resp.StatusCode, body: body}, nil
}

// closedOrProbe checks what follows the expected answers on c. If kip
// closed the connection, nothing more may be read. Otherwise a probe (a
// SelfSubjectReview that closes the connection) must get the very next
// answer, as who: so kip produced no answer the test did not ask for, such
// as one to a request hidden inside another's body.
func (c *rawConn) closedOrProbe(t *testing.T, wantClosed bool, auth, who string) {
	t.Helper()
	if wantClosed {
		if res, err := c.next(); err == nil {
			t.Fatalf("kip answered again (%d) on a connection it should have closed: %.300s", res.code, res.body)
		}
		return
	}
	c.send(ssrRequest(auth+"Connection: close\r\n", ssrBody))
	res, err := c.next()
	if err != nil {
		t.Fatalf("no answer to the probe after the expected answers: %v", err)
	}
	if err := checkServedAs(res, who); err != nil {
		t.Fatalf("the answer after the expected ones is not the probe's: %v", err)
	}
	if res, err := c.next(); err == nil {
		t.Fatalf("kip answered once more (%d) after the probe: %.300s", res.code, res.body)
	}
}

// ssrRequest is a SelfSubjectReview with header lines head (each ending in
// CRLF) and a Content-Length body.
func ssrRequest(head, body string) string {
	return "POST " + ssrPath + " HTTP/1.1\r\nHost: kip\r\nContent-Type: application/json\r\n" + head +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// httpChunk is data as one HTTP/1.1 chunk.
func httpChunk(data string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(data), data) }

// smuggledRequest is the request hidden behind another: with no
// credential of its own it gets 401 when read as a request, and kip must
// never answer it as part of the request in front of it.
const smuggledRequest = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: kip\r\n\r\n"

// TestAdversarialHTTP1Framing writes HTTP/1.1 requests whose framing is
// ambiguous or malformed on a raw TLS connection. Go's server, which parses
// every request kip serves, refuses what RFC 9112 lets it refuse (400, 431,
// 501, then it closes the connection) and otherwise reads one framing only:
// Transfer-Encoding over Content-Length, obs-fold joined into the previous
// value. Whatever follows a request's body is a new request that kip
// authenticates on its own, so a request hidden behind one that carries a
// token gets 401. kip then frames what it forwards afresh (HTTP/2 upstream),
// so the upstream cannot read it another way. Each case checks every answer
// on the connection, then that nothing else comes.
func TestAdversarialHTTP1Framing(t *testing.T) {
	ns := createNamespace(t)
	const account = "adversarial-framing"
	token := serviceAccountToken(t, ns, account)
	saUser := "system:serviceaccount:" + ns + ":" + account
	caller := harness.UniqueName("adv-framing")
	cert := rawUserCert(t, caller)
	auth := "Authorization: Bearer " + token + "\r\n"
	body := ssrBody
	chunked := httpChunk(body) + "0\r\n\r\n"
	big := strings.Repeat("a", 1<<20+64<<10)

	tests := []struct {
		name string
		cert bool // the connection presents the caller's certificate; else requests carry the token
		data string
		// want are the codes of the answers, in order: 201 is a
		// SelfSubjectReview naming the connection's identity.
		want   []int
		closed bool // kip closes the connection after them
	}{
		{name: "Content-Length and Transfer-Encoding: chunked wins, the rest is a new request",
			data: clteRequest(auth, "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", chunked, smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "Transfer-Encoding before Content-Length",
			data: clteRequest(auth, "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", chunked, smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "Content-Length: 0 with a chunked body",
			data: clteRequest(auth, "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", chunked, smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "two different Content-Lengths",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n", len(body), len(body)+len(smuggledRequest)), body+smuggledRequest),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "two equal Content-Lengths frame the body once",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n", len(body), len(body)), body+smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "Content-Length with a sign",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: +%d\r\n", len(body)), body+smuggledRequest),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "Content-Length as a list in one field",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: %d, %d\r\n", len(body), len(body)), body+smuggledRequest),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "Transfer-Encoding: chunked, identity",
			data: rawPOST(auth+"Transfer-Encoding: chunked, identity\r\n", chunked+smuggledRequest),
			want: []int{http.StatusNotImplemented}, closed: true},
		{name: "two Transfer-Encoding fields",
			data: rawPOST(auth+"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked+smuggledRequest),
			want: []int{http.StatusNotImplemented}, closed: true},
		{name: "Transfer-Encoding on HTTP/1.0 is ignored: Content-Length frames the body",
			data: "POST " + ssrPath + " HTTP/1.0\r\nHost: kip\r\nContent-Type: application/json\r\n" + auth +
				"Transfer-Encoding: chunked\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body + smuggledRequest,
			want: []int{http.StatusCreated}, closed: true},
		{name: "obs-fold hides Impersonate-User inside the value of the header above",
			data: ssrRequest(auth+"X-Note: folded\r\n Impersonate-User: kip-admin\r\n\tImpersonate-Group: system:masters\r\n", body),
			want: []int{http.StatusCreated}},
		{name: "obs-fold as the first header line",
			data: "POST " + ssrPath + " HTTP/1.1\r\n Impersonate-User: kip-admin\r\nHost: kip\r\nContent-Type: application/json\r\n" +
				auth + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body,
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "whitespace before the colon",
			data: ssrRequest(auth+"Impersonate-User : kip-admin\r\n", body),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "tab before the colon",
			data: ssrRequest(auth+"Impersonate-Group\t: system:masters\r\n", body),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "oversized header block",
			data: ssrRequest(auth+"X-Big: "+big+"\r\n", body),
			want: []int{http.StatusRequestHeaderFieldsTooLarge}, closed: true},
		{name: "the token only in a chunked trailer",
			data: rawPOST("Trailer: Authorization\r\nTransfer-Encoding: chunked\r\n", httpChunk(body)+"0\r\n"+auth+"\r\n"),
			want: []int{http.StatusUnauthorized}},
		{name: "impersonation and a token in a chunked trailer beside a certificate", cert: true,
			data: rawPOST("Trailer: Impersonate-User, Impersonate-Group, Authorization\r\nTransfer-Encoding: chunked\r\n",
				httpChunk(body)+"0\r\nImpersonate-User: kip-admin\r\nImpersonate-Group: system:masters\r\n"+auth+"\r\n"),
			want: []int{http.StatusCreated}},
		{name: "absolute-form target naming another server", cert: true,
			data: strings.Replace(ssrRequest("", body), "POST "+ssrPath, "POST https://127.0.0.1:1"+ssrPath, 1),
			want: []int{http.StatusCreated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, connAuth := saUser, auth
			var c *rawConn
			if tt.cert {
				who, connAuth = caller, ""
				c = dialKip(t, cert)
			} else {
				c = dialKip(t, nil)
			}
			c.send(tt.data)
			for i, code := range tt.want {
				res, err := c.next()
				if err != nil {
					t.Fatalf("answer %d: kip closed the connection (%v), want %d", i+1, err, code)
				}
				if err := checkAnswer(res, code, who); err != nil {
					t.Fatalf("answer %d: %v", i+1, err)
				}
			}
			c.closedOrProbe(t, tt.closed, connAuth, who)
		})
	}
}

// clteRequest is a SelfSubjectReview with the framing headers in framing
// (a format whose %d, if any, is the Content-Length that covers both the
// chunked body and what follows it), then trailing right after.
func clteRequest(auth, framing, chunked, trailing string) string {
	if strings.Contains(framing, "%d") {
		framing = fmt.Sprintf(framing, len(chunked)+len(trailing))
	}
	return rawPOST(auth+framing, chunked+trailing)
}

// rawPOST is a SelfSubjectReview POST whose framing headers are in head.
func rawPOST(head, rest string) string {
	return "POST " + ssrPath + " HTTP/1.1\r\nHost: kip\r\nContent-Type: application/json\r\n" + head + "\r\n" + rest
}

// checkAnswer checks one answer read off a raw connection: a 201 must be a
// SelfSubjectReview naming who; a 401 comes from kip's chain and must be
// a metav1.Status. 400, 431 and 501 are Go's server
// refusing the framing before kip's handler runs, in plain text.
func checkAnswer(res rawResponse, code int, who string) error {
	switch code {
	case http.StatusCreated:
		return checkServedAs(res, who)
	case http.StatusUnauthorized:
		_, err := rawStatus(res, code)
		return err
	}
	if res.code != code {
		return fmt.Errorf("got %d, want %d: %.300s", res.code, code, res.body)
	}
	return nil
}

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
	eventually(t, 30*time.Second, func() error {
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

// h2Conn is one raw HTTP/2 connection to kip: the test writes HEADERS and
// DATA frames itself, so it can send what Go's client refuses to.
type h2Conn struct {
	conn *tls.Conn
	fr   *http2.Framer
}

// dialKipH2 opens a raw HTTP/2 connection to kip that presents cert.
func dialKipH2(t *testing.T, cert *tls.Certificate) *h2Conn {
	t.Helper()
	cfg := &tls.Config{RootCAs: kipRoots(t), NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(stack.KipURL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("kip did not agree to HTTP/2: %q", conn.ConnectionState().NegotiatedProtocol)
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute)) // liveness only
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &h2Conn{conn: conn, fr: fr}
}

// send writes one request on stream id: fields exactly as given (names not
// lower-cased, nothing dropped), then body.
func (c *h2Conn) send(t *testing.T, id uint32, fields [][2]string, body string) {
	t.Helper()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: body == ""}); err != nil {
		t.Fatal(err)
	}
	if body != "" {
		if err := c.fr.WriteData(id, true, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
}

// h2Answer is what came back on one stream: a response, a reset of the
// stream, or the end of the whole connection.
type h2Answer struct {
	reset  http2.ErrCode // the stream's reset code, if it was reset
	closed bool          // kip sent GOAWAY before the stream ended
	goAway http2.ErrCode // its code
	res    rawResponse
}

func (a h2Answer) String() string {
	switch {
	case a.closed:
		return fmt.Sprintf("GOAWAY %v (answer %d so far)", a.goAway, a.res.code)
	case a.reset != 0:
		return fmt.Sprintf("RST_STREAM %v", a.reset)
	}
	return fmt.Sprintf("%d %.200s", a.res.code, a.res.body)
}

// answer reads frames until stream id ends or kip ends the connection,
// answering the peer's SETTINGS and PINGs.
func (c *h2Conn) answer(t *testing.T, id uint32) h2Answer {
	t.Helper()
	var got h2Answer
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			got.goAway, got.closed = f.ErrCode, true
			return got
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				got.reset = f.ErrCode
				return got
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if got.res.code == 0 {
				got.res.code, _ = strconv.Atoi(f.PseudoValue("status"))
			}
			if f.StreamEnded() {
				return got
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			got.res.body = append(got.res.body, f.Data()...)
			if len(f.Data()) > 0 {
				_ = c.fr.WriteWindowUpdate(0, uint32(len(f.Data())))
				_ = c.fr.WriteWindowUpdate(id, uint32(len(f.Data())))
			}
			if f.StreamEnded() {
				return got
			}
		}
	}
}

// h2Review is a SelfSubjectReview on kip, as HTTP/2 fields, with extra
// fields after the pseudo-headers.
func h2Review(extra ...[2]string) [][2]string {
	fields := [][2]string{
		{":method", http.MethodPost}, {":scheme", "https"}, {":authority", "kip"}, {":path", ssrPath},
		{"content-type", "application/json"},
	}
	return append(fields, extra...)
}

// TestAdversarialHTTP2Framing sends, on raw HTTP/2 streams, what HTTP/2
// forbids and Go's client never sends: upper-case field names, the
// connection-specific fields (Connection, Transfer-Encoding, Upgrade,
// Keep-Alive), CR or LF inside a value (which an HTTP/1.1 hop would read as
// a new header line), a repeated pseudo-header. Go's server resets each such
// stream with PROTOCOL_ERROR before kip's handler runs, so nothing of it is
// forwarded. The connection survives: a well-formed request on the next
// stream is served as the caller, and is the only answer.
func TestAdversarialHTTP2Framing(t *testing.T) {
	caller := harness.UniqueName("adv-h2")
	cert := rawUserCert(t, caller)
	// Go's server resets a stream whose fields are malformed, and answers
	// 400 (in plain text) to one that carries a connection-specific field.
	const reset, badRequest = 0, http.StatusBadRequest
	tests := []struct {
		name   string
		fields [][2]string
		want   int
	}{
		{"upper-case Impersonate-User name", h2Review([2]string{"Impersonate-User", "kip-admin"}), reset},
		{"upper-case Authorization name", h2Review([2]string{"Authorization", "Bearer garbage"}), reset},
		{"CR LF inside a value hiding Impersonate-User", h2Review([2]string{"x-note", "a\r\nImpersonate-User: kip-admin"}), reset},
		{"LF inside a value hiding Impersonate-Group", h2Review([2]string{"x-note", "a\nImpersonate-Group: system:masters"}), reset},
		{"NUL inside a value", h2Review([2]string{"x-note", "a\x00b"}), reset},
		{"space inside a field name", h2Review([2]string{"impersonate-user ", "kip-admin"}), reset},
		{"second :path", h2Review([2]string{":path", "/api/v1/namespaces/kube-system/secrets"}), reset},
		{"pseudo-header after a regular field", append(h2Review(), [2]string{":authority", "elsewhere"}), reset},
		{"connection naming impersonate-user", h2Review([2]string{"connection", "impersonate-user"}, [2]string{"impersonate-user", "kip-admin"}), badRequest},
		{"transfer-encoding: chunked", h2Review([2]string{"transfer-encoding", "chunked"}), badRequest},
		{"upgrade: websocket", h2Review([2]string{"upgrade", "websocket"}), badRequest},
		{"keep-alive", h2Review([2]string{"keep-alive", "timeout=5"}), badRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialKipH2(t, cert)
			// No DATA after a refused HEADERS: it would be DATA on a stream
			// the server never opened, and cost the connection.
			c.send(t, 1, tt.fields, "")
			first := c.answer(t, 1)
			switch {
			case first.closed:
				t.Fatalf("stream 1: %v, want the stream alone refused", first)
			case tt.want == reset && first.reset != http2.ErrCodeProtocol:
				t.Fatalf("stream 1: %v, want RST_STREAM PROTOCOL_ERROR", first)
			case tt.want == badRequest && (first.reset != 0 || first.res.code != badRequest):
				t.Fatalf("stream 1: %v, want Go's 400", first)
			}
			c.send(t, 3, h2Review([2]string{"content-length", strconv.Itoa(len(ssrBody))}), ssrBody)
			second := c.answer(t, 3)
			if second.closed || second.reset != 0 {
				t.Fatalf("stream 3, well formed: %v", second)
			}
			if err := checkServedAs(second.res, caller); err != nil {
				t.Fatalf("stream 3: %v", err)
			}
			if err := noMoreH2Answers(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// noMoreH2Answers closes the connection politely and checks that no other
// stream gets headers or data before kip closes too.
func noMoreH2Answers(c *h2Conn) error {
	if err := c.fr.WriteGoAway(3, http2.ErrCodeNo, nil); err != nil {
		return nil // kip closed first: nothing more can come
	}
	_ = c.conn.CloseWrite()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil // closed
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			return fmt.Errorf("an answer on stream %d that nobody asked for", f.StreamID)
		case *http2.DataFrame:
			if len(f.Data()) > 0 {
				return fmt.Errorf("data on stream %d after the last answer: %.300s", f.StreamID, f.Data())
			}
		case *http2.GoAwayFrame:
			return nil
		}
	}
}
