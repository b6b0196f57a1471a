package exchange

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// outcome is what a row expects when the answer is a TokenCredentialRequest.
type outcome int

const (
	asStatus     outcome = iota // a metav1.Status error
	issuedNewKey                // a certificate for a key kip generated
	issuedForCSR                // a certificate for the CSR's key, no key returned
	tokenRefused                // 201 "authentication failed", no credential
)

func parseAnswer(t *testing.T, w *httptest.ResponseRecorder) (status metav1.Status, tcr loginv1alpha1.TokenCredentialRequest) {
	t.Helper()
	var kind metav1.TypeMeta
	if err := json.Unmarshal(w.Body.Bytes(), &kind); err != nil {
		t.Fatalf("the answer is not JSON: %v\n%s", err, w.Body)
	}
	switch kind {
	case metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}:
		if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil {
			t.Fatal(err)
		}
	case metav1.TypeMeta{APIVersion: "login.kip.dev/v1alpha1", Kind: "TokenCredentialRequest"}:
		if err := json.Unmarshal(w.Body.Bytes(), &tcr); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the answer has kind %+v:\n%s", kind, w.Body)
	}
	return status, tcr
}

func TestExchange(t *testing.T) {
	csrKey := newP256(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	goodCSR := csrFor(t, csrKey)
	spec := func(token string, csr []byte) []byte {
		return requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: token, CertificateSigningRequest: csr})
	}
	header := func(kv ...string) func(*http.Request) {
		return func(r *http.Request) {
			for i := 0; i < len(kv); i += 2 {
				r.Header[kv[i]] = append(r.Header[kv[i]], kv[i+1])
			}
		}
	}
	ca := newTestCA(t)
	certPEM, _, _ := ca.Issue(&user.DefaultInfo{Name: "x"}, csrKey.Public(), testTTL)

	cases := []struct {
		name      string
		method    string
		body      []byte
		edit      func(*http.Request)
		caFails   bool
		wantCode  int
		outcome   outcome
		csrPub    crypto.PublicKey
		reason    metav1.StatusReason
		fields    []string
		inMessage string
		// checked says whether the token reached the authenticator.
		checked bool
	}{
		{name: "no CSR: kip generates the key", body: spec(goodToken, nil), wantCode: 201, outcome: issuedNewKey, checked: true},
		{name: "P-256 CSR", body: spec(goodToken, goodCSR), wantCode: 201, outcome: issuedForCSR, csrPub: csrKey.Public(), checked: true},
		{name: "P-384 CSR", body: spec(goodToken, csrFor(t, p384)), wantCode: 201, outcome: issuedForCSR, csrPub: p384.Public(), checked: true},
		{name: "Ed25519 CSR", body: spec(goodToken, csrFor(t, edKey)), wantCode: 201, outcome: issuedForCSR, csrPub: edKey.Public(), checked: true},
		{name: "RSA-2048 CSR", body: spec(goodToken, csrFor(t, rsa2048)), wantCode: 201, outcome: issuedForCSR, csrPub: rsa2048.Public(), checked: true},
		{name: "CSR with surrounding whitespace", body: spec(goodToken, append(append([]byte("\n\n"), goodCSR...), "\n \n"...)), wantCode: 201, outcome: issuedForCSR, csrPub: csrKey.Public(), checked: true},
		{name: "JSON with a charset", body: spec(goodToken, nil), edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }, wantCode: 201, outcome: issuedNewKey, checked: true},
		{name: "query string is ignored", body: spec(goodToken, nil), edit: func(r *http.Request) { r.URL.RawQuery = "dryRun=All&fieldManager=kubectl" }, wantCode: 201, outcome: issuedNewKey, checked: true},
		{name: "Authorization header is ignored, not used", body: spec(goodToken, nil), edit: header("Authorization", "Bearer "+badToken), wantCode: 201, outcome: issuedNewKey, checked: true},
		{name: "X-Forwarded-For is ignored", body: spec(goodToken, nil), edit: header("X-Forwarded-For", "198.51.100.7"), wantCode: 201, outcome: issuedNewKey, checked: true},

		{name: "refused token", body: spec(badToken, nil), wantCode: 201, outcome: tokenRefused, checked: true},
		{name: "refused token with a valid CSR", body: spec(badToken, goodCSR), wantCode: 201, outcome: tokenRefused, checked: true},
		{name: "authenticator error is just a failure", body: spec(brokenToken, nil), wantCode: 201, outcome: tokenRefused, checked: true},
		{name: "accepted without a user name", body: spec(namelessToken, nil), wantCode: 201, outcome: tokenRefused, checked: true},
		{name: "token for another audience", body: spec(otherAudToken, nil), wantCode: 201, outcome: tokenRefused, checked: true},
		{name: "forged credential in the request's status", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"token":"bad-token"},"status":{"credential":{"expirationTimestamp":"2099-01-01T00:00:00Z","clientCertificateData":"forged","clientKeyData":"forged"}}}`), wantCode: 201, outcome: tokenRefused, checked: true},
		{name: "forged message in the request's status", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","metadata":{"name":"login"},"spec":{"token":"good-token"},"status":{"message":"forged","credential":{"expirationTimestamp":"2099-01-01T00:00:00Z","clientCertificateData":"forged"}}}`), wantCode: 201, outcome: issuedNewKey, checked: true},
		{name: "issuer fails", body: spec(goodToken, nil), caFails: true, wantCode: 500, reason: metav1.StatusReasonInternalError, inMessage: "kip could not sign a certificate", checked: true},

		{name: "GET", method: http.MethodGet, wantCode: 405, reason: metav1.StatusReasonMethodNotAllowed},
		{name: "PUT", method: http.MethodPut, body: spec(goodToken, nil), wantCode: 405, reason: metav1.StatusReasonMethodNotAllowed},
		{name: "DELETE", method: http.MethodDelete, wantCode: 405, reason: metav1.StatusReasonMethodNotAllowed},
		{name: "Impersonate-User", body: spec(goodToken, nil), edit: header("Impersonate-User", "system:admin"), wantCode: 400, reason: metav1.StatusReasonBadRequest, inMessage: "Impersonate-User"},
		{name: "impersonate-group in lower case", body: spec(goodToken, nil), edit: header("impersonate-group", "system:masters"), wantCode: 400, reason: metav1.StatusReasonBadRequest, inMessage: "impersonate-group"},
		{name: "IMPERSONATE-EXTRA-scopes", body: spec(goodToken, nil), edit: header("IMPERSONATE-EXTRA-scopes", "all"), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "no Content-Type", body: spec(goodToken, nil), edit: func(r *http.Request) { r.Header.Del("Content-Type") }, wantCode: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "YAML", body: []byte("apiVersion: login.kip.dev/v1alpha1\nkind: TokenCredentialRequest\nspec:\n  token: good-token\n"), edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/yaml") }, wantCode: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "protobuf", body: spec(goodToken, nil), edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/vnd.kubernetes.protobuf") }, wantCode: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "two Content-Types", body: spec(goodToken, nil), edit: header("Content-Type", "text/plain"), wantCode: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "malformed Content-Type", body: spec(goodToken, nil), edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/json; ;;=") }, wantCode: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "gzip body", body: spec(goodToken, nil), edit: header("Content-Encoding", "gzip"), wantCode: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "body over the cap", body: bytes.Repeat([]byte(" "), MaxBodyBytes+1), wantCode: 413, reason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "body over the cap without a length", body: bytes.Repeat([]byte(" "), MaxBodyBytes+1), edit: func(r *http.Request) { r.ContentLength = -1 }, wantCode: 413, reason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "empty body", body: nil, wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "not JSON", body: []byte("token=good-token"), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "JSON null", body: []byte("null"), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "no apiVersion or kind", body: []byte(`{"spec":{"token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "wrong version", body: []byte(`{"apiVersion":"login.kip.dev/v1","kind":"TokenCredentialRequest","spec":{"token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "wrong group", body: []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "another kind of the group", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"ListOptions"}`), wantCode: 400, reason: metav1.StatusReasonBadRequest, inMessage: "must be a login.kip.dev/v1alpha1 TokenCredentialRequest"},
		{name: "a Status", body: []byte(`{"apiVersion":"v1","kind":"Status"}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "unknown field", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"token":"good-token","user":"admin"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest, inMessage: "unknown field"},
		{name: "duplicate token", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"token":"bad-token","token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest, inMessage: "duplicate field"},
		{name: "token in another letter case", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"Token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "token of the wrong type", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"token":["good-token"]}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "CSR not base64", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"token":"good-token","certificateSigningRequest":"-----BEGIN"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "a decoding error quotes no value", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest","metadata":{"creationTimestamp":"good-token"},"spec":{"token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest},
		{name: "no kind quotes no body", body: []byte(`{"spec":{"token":"good-token"}}`), wantCode: 400, reason: metav1.StatusReasonBadRequest, inMessage: "apiVersion and kind are required"},
		{name: "trailing JSON", body: append(spec(goodToken, nil), `{"kind":"x"}`...), wantCode: 400, reason: metav1.StatusReasonBadRequest},

		{name: "empty token", body: spec("", nil), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.token"}},
		{name: "no spec", body: []byte(`{"apiVersion":"login.kip.dev/v1alpha1","kind":"TokenCredentialRequest"}`), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.token"}},
		{name: "empty token and a bad CSR", body: spec("", []byte("junk")), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.token", "spec.certificateSigningRequest"}},
		{name: "CSR not PEM", body: spec(goodToken, []byte("junk")), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "CERTIFICATE REQUEST"},
		{name: "CSR is a certificate", body: spec(goodToken, certPEM), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}},
		{name: "CSR block does not parse", body: spec(goodToken, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("junk")})), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "PKCS#10"},
		{name: "two CSRs", body: spec(goodToken, append(csrFor(t, p384), goodCSR...)), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "exactly one"},
		{name: "text before the CSR", body: spec(goodToken, append([]byte("hello\n"), goodCSR...)), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}},
		{name: "text after the CSR", body: spec(goodToken, append(goodCSR, "bye"...)), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}},
		{name: "CSR signed by another key than it claims", body: spec(goodToken, csrSignedByOther(t, csrKey, newP256(t))), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "does not prove you hold that key"},
		{name: "CSR signed by another key, bad token too", body: spec(badToken, csrSignedByOther(t, csrKey, newP256(t))), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}},
		{name: "P-224 CSR", body: spec(goodToken, csrFor(t, p224)), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "P-224"},
		{name: "P-521 CSR", body: spec(goodToken, csrFor(t, p521)), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "P-521"},
		{name: "RSA-1024 CSR", body: spec(goodToken, csrFor(t, rsa1024)), wantCode: 422, reason: metav1.StatusReasonInvalid, fields: []string{"spec.certificateSigningRequest"}, inMessage: "1024-bit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.ca.fail = tc.caFails
			edit := tc.edit
			if tc.method != "" {
				edit = func(r *http.Request) {
					r.Method = tc.method
					if tc.edit != nil {
						tc.edit(r)
					}
				}
			}
			w := f.post(tc.body, edit)

			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d:\n%s", w.Code, tc.wantCode, w.Body)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if calls, _ := f.tokens.stats(); (calls > 0) != tc.checked {
				t.Errorf("the authenticator was called %d times; want called: %v", calls, tc.checked)
			}
			if f.tokens.noDeadline {
				t.Error("the token was checked without a deadline")
			}
			if tc.checked && !reflect.DeepEqual(f.tokens.gotAudience, authenticator.Audiences{testAudience}) {
				t.Errorf("the token was checked for audiences %q, want kip's", f.tokens.gotAudience)
			}
			if strings.Contains(w.Body.String(), goodToken) {
				t.Errorf("the answer carries the token:\n%s", w.Body)
			}
			status, tcr := parseAnswer(t, w)
			switch tc.outcome {
			case asStatus:
				checkStatus(t, w, status, tc.reason, tc.fields, tc.inMessage)
				if len(f.ca.calls()) > 0 && !tc.caFails {
					t.Error("a certificate was issued for a refused request")
				}
			case tokenRefused:
				checkRefused(t, f, tcr)
			case issuedNewKey, issuedForCSR:
				checkIssued(t, f, tcr, tc.csrPub)
			}
		})
	}
}

func checkStatus(t *testing.T, w *httptest.ResponseRecorder, status metav1.Status, reason metav1.StatusReason, fields []string, inMessage string) {
	t.Helper()
	if status.Status != metav1.StatusFailure || status.Reason != reason || int(status.Code) != w.Code {
		t.Errorf("status %q reason %q code %d, want Failure %q %d", status.Status, status.Reason, status.Code, reason, w.Code)
	}
	if !strings.Contains(status.Message, inMessage) {
		t.Errorf("message %q does not say %q", status.Message, inMessage)
	}
	if reason == metav1.StatusReasonMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
		t.Errorf("Allow %q, want POST", w.Header().Get("Allow"))
	}
	var got []string
	if status.Details != nil {
		for _, c := range status.Details.Causes {
			if c.Field != "" {
				got = append(got, c.Field)
			}
		}
	}
	if !reflect.DeepEqual(got, fields) {
		t.Errorf("causes name fields %q, want %q (message %q)", got, fields, status.Message)
	}
}

func checkRefused(t *testing.T, f *fixture, tcr loginv1alpha1.TokenCredentialRequest) {
	t.Helper()
	if tcr.Status.Credential != nil {
		t.Errorf("a refused token got a credential: %+v", tcr.Status.Credential)
	}
	if tcr.Status.Message == nil || *tcr.Status.Message != "authentication failed" {
		t.Errorf("message %v, want \"authentication failed\"", tcr.Status.Message)
	}
	if tcr.Spec.Token != "" {
		t.Error("the token was echoed")
	}
	if calls := f.ca.calls(); len(calls) > 0 {
		t.Errorf("the issuer was asked %d times for a refused token", len(calls))
	}
}

func checkIssued(t *testing.T, f *fixture, tcr loginv1alpha1.TokenCredentialRequest, csrPub crypto.PublicKey) {
	t.Helper()
	if tcr.Spec.Token != "" || tcr.Status.Message != nil || tcr.Name != "login" {
		t.Errorf("spec.token %q, status.message %v, name %q: want the request echoed without the token", tcr.Spec.Token, tcr.Status.Message, tcr.Name)
	}
	cred := tcr.Status.Credential
	if cred == nil {
		t.Fatal("no credential")
	}
	calls := f.ca.calls()
	if len(calls) != 1 {
		t.Fatalf("the issuer was asked %d times, want once", len(calls))
	}
	checkIssuedUser(t, calls[0])
	cert := parseCert(t, cred.ClientCertificateData)
	if !cred.ExpirationTimestamp.Time.Equal(cert.NotAfter) || !cert.NotAfter.Equal(testEpoch.Add(testTTL)) {
		t.Errorf("expirationTimestamp %v, certificate NotAfter %v, want %v", cred.ExpirationTimestamp, cert.NotAfter, testEpoch.Add(testTTL))
	}
	if csrPub != nil {
		if cred.ClientKeyData != "" {
			t.Error("a key was returned for a CSR")
		}
		checkSameKey(t, cert.PublicKey, csrPub)
		checkSameKey(t, calls[0].pub, csrPub)
		return
	}
	key := parseKey(t, cred.ClientKeyData)
	checkSameKey(t, cert.PublicKey, key.Public())
}

// checkIssuedUser: the issuer sees the authenticated user, without
// system:authenticated or the token's credential-id.
func checkIssuedUser(t *testing.T, c issueCall) {
	t.Helper()
	want := &user.DefaultInfo{Name: testUserName, UID: testUserUID, Groups: []string{"devs", "ops"}, Extra: map[string][]string{testExtraKey: {testExtraValue}}}
	if !reflect.DeepEqual(c.user, user.Info(want)) {
		t.Errorf("issued for %+v, want %+v", c.user, want)
	}
	if c.ttl != testTTL {
		t.Errorf("issued with TTL %v, want %v", c.ttl, testTTL)
	}
}

func parseCert(t *testing.T, data string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode([]byte(data))
	if block == nil || block.Type != "CERTIFICATE" || len(rest) > 0 {
		t.Fatalf("clientCertificateData is not one PEM certificate: %q", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// parseKey checks the generated key is a PKCS#8 ECDSA P-256 key.
func parseKey(t *testing.T, data string) *ecdsa.PrivateKey {
	t.Helper()
	block, rest := pem.Decode([]byte(data))
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) > 0 {
		t.Fatalf("clientKeyData is not one PEM PRIVATE KEY: %q", data)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("the generated key is %T, want ECDSA P-256", parsed)
	}
	return key
}

func checkSameKey(t *testing.T, got, want crypto.PublicKey) {
	t.Helper()
	eq, ok := got.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(want) {
		t.Errorf("certificate key %T does not match %T", got, want)
	}
}
