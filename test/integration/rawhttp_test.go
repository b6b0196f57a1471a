package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// This file writes requests to kip byte by byte or header by header, over
// HTTP/1.1 and HTTP/2, and reads what came back: the helpers that the files
// for docs/security.md's rules 1, 2 and 5 share (authentication_test.go,
// clientheaders_test.go, smuggling_test.go, paths_test.go, upgrades_test.go).
// Each case states its exact outcome: the status, and for a served request
// the identity the upstream saw.

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

// rawTry is rawDo that returns its error, for use inside harness.Eventually.
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
