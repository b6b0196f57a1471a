package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// rawProto is the HTTP version a raw client speaks to kip. Hostile inputs
// run over both: HTTP/2 carries headers differently (lower-case names, no
// Connection header), and kip must hold on either.
type rawProto int

const (
	rawHTTP1 rawProto = 1
	rawHTTP2 rawProto = 2
)

func (p rawProto) String() string { return fmt.Sprintf("HTTP/%d", int(p)) }

var rawProtos = []rawProto{rawHTTP1, rawHTTP2}

// rawHeader is one header exactly as the caller writes it. Over HTTP/1.1 the
// name goes on the wire in this very letter case.
type rawHeader struct{ name, value string }

// rawRequest is one request a raw client sends to kip.
type rawRequest struct {
	method, path, body string
	header             []rawHeader
}

// rawResponse is kip's answer, body read in full.
type rawResponse struct {
	code int
	body []byte
}

// rawClient returns a client that speaks only proto to kip and presents cert,
// if any. The certificate goes out whatever CAs kip names in its
// certificate request, so that kip, and not the client's TLS stack, judges it.
func rawClient(t *testing.T, proto rawProto, cert *tls.Certificate) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(stack.KipCAPEM) {
		t.Fatal("kip's serving CA is not valid PEM")
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	protocols := new(http.Protocols)
	switch proto {
	case rawHTTP1:
		protocols.SetHTTP1(true)
		cfg.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	case rawHTTP2:
		protocols.SetHTTP2(true)
		tr.ForceAttemptHTTP2 = true
	}
	tr.Protocols = protocols
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		// A redirect is an answer to look at, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// rawDo sends req to kip over client and fails the test unless the answer
// came back in proto.
func rawDo(t *testing.T, client *http.Client, proto rawProto, req rawRequest) rawResponse {
	t.Helper()
	res, err := rawTry(client, proto, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// rawTry is rawDo that returns its error, for use inside eventually.
func rawTry(client *http.Client, proto rawProto, req rawRequest) (rawResponse, error) {
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	hr, err := http.NewRequest(method, stack.KipURL+req.path, body)
	if err != nil {
		return rawResponse{}, err
	}
	if req.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	for _, h := range req.header {
		hr.Header[h.name] = append(hr.Header[h.name], h.value)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return rawResponse{}, fmt.Errorf("%s %s over %s: %w", method, req.path, proto, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return rawResponse{}, fmt.Errorf("reading the answer to %s %s: %w", method, req.path, err)
	}
	if resp.ProtoMajor != int(proto) {
		return rawResponse{}, fmt.Errorf("%s %s: asked for %s, got %s", method, req.path, proto, resp.Proto)
	}
	return rawResponse{code: resp.StatusCode, body: data}, nil
}

// rawStatus decodes a metav1.Status answer with code, as kube-apiserver
// writes it: kubectl shows nothing useful for anything else.
func rawStatus(res rawResponse, code int) (metav1.Status, error) {
	var st metav1.Status
	if res.code != code {
		return st, fmt.Errorf("got %d, want %d: %s", res.code, code, res.body)
	}
	if err := json.Unmarshal(res.body, &st); err != nil {
		return st, fmt.Errorf("answer %d is not JSON: %w: %s", res.code, err, res.body)
	}
	if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure || int(st.Code) != code || st.Message == "" {
		return st, fmt.Errorf("answer %d is not a failure Status with code %d and a message: %s", res.code, code, res.body)
	}
	return st, nil
}

// mustRawStatus is rawStatus that fails the test.
func mustRawStatus(t *testing.T, res rawResponse, code int) metav1.Status {
	t.Helper()
	st, err := rawStatus(res, code)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rawClientCert issues a client certificate from ca in a form a tls.Config
// can present.
func rawClientCert(t *testing.T, ca *pki.CA, req pki.ClientCertRequest) *tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueClient(req)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// rawUserCert is a valid client certificate from the cluster's client CA,
// which kip trusts, for user in groups.
func rawUserCert(t *testing.T, user string, groups ...string) *tls.Certificate {
	t.Helper()
	return rawClientCert(t, stack.Cluster.ClientCA, pki.ClientCertRequest{CommonName: user, Organizations: groups})
}

// selfSubjectReview asks the upstream who it thinks the caller is.
var selfSubjectReview = rawRequest{
	method: http.MethodPost,
	path:   "/apis/authentication.k8s.io/v1/selfsubjectreviews",
	body:   `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`,
}

// mastersOnly is a request that only system:masters (or kip's own account,
// were it ever over-privileged) could answer with 200.
const mastersOnly = "/api/v1/namespaces/kube-system/secrets"

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

// TestHostileHeadersDoNotChangeWhoRuns sends a valid certificate together
// with headers that try to change who the request runs as, or to strip the
// impersonation kip adds so that it would run as kip itself. The upstream's
// own answer to "who am I" must name the caller and only the caller.
func TestHostileHeadersDoNotChangeWhoRuns(t *testing.T) {
	const group = "hostile-callers"
	caller := harness.UniqueName("hostile")
	callerCert := rawUserCert(t, caller, group)

	tests := []struct {
		name      string
		header    []rawHeader
		http1Only bool
	}{
		{name: "no hostile header"},
		{name: "Connection names Impersonate-User and Authorization, with a garbage token", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User, Authorization"}, {"Authorization", "Bearer garbage"}}},
		{name: "Connection names Impersonate-User", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User"}}},
		{name: "Connection names every impersonation header", http1Only: true,
			header: []rawHeader{{"Connection", "Impersonate-User, Impersonate-Group, Impersonate-Uid, Impersonate-Extra-Foo, keep-alive"}}},
		{name: "garbage token beside the certificate",
			header: []rawHeader{{"Authorization", "Bearer garbage"}}},
		{name: "spoofed front-proxy identity",
			header: []rawHeader{
				{"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"}, {"X-Remote-Extra-Foo", "bar"},
				{"x-remote-uid", "admin-uid"}, {"X-Forwarded-For", "203.0.113.7"}, {"X-Real-Ip", "203.0.113.8"},
			}},
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			for _, tt := range tests {
				if tt.http1Only && proto != rawHTTP1 {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					client := rawClient(t, proto, callerCert)
					req := selfSubjectReview
					req.header = tt.header
					res := rawDo(t, client, proto, req)
					if res.code != http.StatusCreated {
						t.Fatalf("SelfSubjectReview: got %d, want 201: %s", res.code, res.body)
					}
					var review authenticationv1.SelfSubjectReview
					if err := json.Unmarshal(res.body, &review); err != nil {
						t.Fatalf("decoding the SelfSubjectReview: %v: %s", err, res.body)
					}
					assertOnlyCaller(t, review.Status.UserInfo, caller, group)
				})
			}
		})
	}
}

// assertOnlyCaller fails unless got is exactly the certificate user caller
// in group, as kube-apiserver sees one: no spoofed group, extra or uid, and
// not kip's own account.
func assertOnlyCaller(t *testing.T, got authenticationv1.UserInfo, caller, group string) {
	t.Helper()
	if got.Username == devstack.KipUser {
		t.Fatalf("the request ran as kip itself: %+v", got)
	}
	if got.Username != caller {
		t.Fatalf("the upstream saw user %q, want %q: %+v", got.Username, caller, got)
	}
	groups := slices.Sorted(slices.Values(got.Groups))
	if want := []string{group, "system:authenticated"}; !slices.Equal(groups, want) {
		t.Errorf("the upstream saw groups %q, want %q", groups, want)
	}
	if got.UID != "" {
		t.Errorf("the upstream saw uid %q, want none", got.UID)
	}
	for key := range got.Extra {
		// kube-apiserver 1.37 gives certificate users a credential-id, and
		// kip forwards it; nothing else is theirs.
		if key != "authentication.kubernetes.io/credential-id" {
			t.Errorf("the upstream saw extra %q=%q, which the caller never proved", key, got.Extra[key])
		}
	}
}

// TestHostileForwardingHeadersDoNotReachAudit checks, in the upstream's own
// audit log, that a caller cannot put an address of its choosing among the
// request's source IPs: kube-apiserver believes X-Forwarded-For and
// X-Real-Ip from whoever sends them.
func TestHostileForwardingHeadersDoNotReachAudit(t *testing.T) {
	spoofed := []string{"203.0.113.7", "203.0.113.8", "203.0.113.9", "203.0.113.10"}
	t.Run("control: kube-apiserver believes them when sent to it directly", func(t *testing.T) {
		// Without this the check below could pass only because the
		// upstream ignores the headers.
		cfg, err := stack.Cluster.UserConfig(harness.UniqueName("direct"))
		if err != nil {
			t.Fatal(err)
		}
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		marker := harness.UniqueName("marker")
		req, err := http.NewRequest(http.MethodGet, stack.Cluster.URL+"/api/v1/namespaces/default/configmaps/"+marker, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", spoofed[0])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		events := auditEvents(t, marker)
		if !slices.Contains(events[0].SourceIPs, spoofed[0]) {
			t.Fatalf("kube-apiserver ignored X-Forwarded-For sent to it directly (source IPs %v); this test proves nothing", events[0].SourceIPs)
		}
	})
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			caller := harness.UniqueName("hostile")
			client := rawClient(t, proto, rawUserCert(t, caller))
			marker := harness.UniqueName("marker")
			res := rawDo(t, client, proto, rawRequest{
				path: "/api/v1/namespaces/default/configmaps/" + marker,
				header: []rawHeader{
					{"X-Forwarded-For", spoofed[0]}, {"X-Real-Ip", spoofed[1]},
					{"x-forwarded-for", spoofed[2] + ", " + spoofed[3]}, {"Forwarded", "for=" + spoofed[2]},
					{"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"},
				},
			})
			// The caller has no rights: the upstream, not kip, says 403.
			mustRawStatus(t, res, http.StatusForbidden)

			// The RequestReceived event is written before kube-apiserver's
			// impersonation filter runs; wait for the one that has it.
			var events []auditv1.Event
			eventually(t, 30*time.Second, func() error {
				events = auditEvents(t, marker)
				for _, ev := range events {
					if ev.Stage == auditv1.StageResponseComplete {
						return nil
					}
				}
				return fmt.Errorf("no ResponseComplete audit event for %q yet", marker)
			})
			for _, ev := range events {
				for _, ip := range ev.SourceIPs {
					if slices.Contains(spoofed, ip) {
						t.Errorf("audit event %s (stage %s) lists the spoofed source IP %s: %v", ev.AuditID, ev.Stage, ip, ev.SourceIPs)
					}
				}
				if ev.User.Username != devstack.KipUser {
					t.Errorf("audit event %s: authenticated user %q, want kip's own %q", ev.AuditID, ev.User.Username, devstack.KipUser)
				}
				if ev.Stage != auditv1.StageResponseComplete {
					continue
				}
				if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != caller {
					t.Errorf("audit event %s: impersonated user %+v, want %q", ev.AuditID, ev.ImpersonatedUser, caller)
				} else if slices.Contains(ev.ImpersonatedUser.Groups, "system:masters") {
					t.Errorf("audit event %s: impersonated groups %q include system:masters", ev.AuditID, ev.ImpersonatedUser.Groups)
				}
			}
			t.Logf("%d audit events, source IPs %v", len(events), events[0].SourceIPs)
		})
	}
}
