package identity

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	kipexchange "github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/rig/harness"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// Section 6 of docs/security.md, the credential exchange, and rule 8: every
// request the exchange could be sent by hand (malformed, oversized, with a
// CSR that asks for more than a public key or proves no key, or a flood)
// gets a Status with the right code and never a certificate it should not.

// rawAnswer is what kip sent back to a hand-built exchange request.
type rawAnswer struct {
	code   int
	header http.Header
	body   []byte
}

// postExchange sends body to kip's exchange as it is, with the given
// headers, so that requests client-go would never build can be tried.
func postExchange(t *testing.T, kip *rest.Config, body io.Reader, header http.Header) rawAnswer {
	t.Helper()
	client, err := rest.HTTPClientFor(kip)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, kip.Host+kipexchange.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("kip did not answer: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading kip's answer: %v", err)
	}
	return rawAnswer{code: resp.StatusCode, header: resp.Header, body: data}
}

// status decodes a refusal, insisting that it is a complete metav1.Status
// that agrees with the HTTP status code.
func (a rawAnswer) status(t *testing.T) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(a.body, &s); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %q", a.code, err, a.body)
	}
	if s.Kind != "Status" || s.APIVersion != "v1" || s.Status != metav1.StatusFailure || int(s.Code) != a.code {
		t.Fatalf("answer %d is not a v1 Status failure with that code: %q", a.code, a.body)
	}
	return s
}

// answer decodes a 201.
func (a rawAnswer) answer(t *testing.T) *loginv1alpha1.TokenCredentialRequest {
	t.Helper()
	if a.code != http.StatusCreated {
		t.Fatalf("answer %d, want 201: %q", a.code, a.body)
	}
	out := &loginv1alpha1.TokenCredentialRequest{}
	if err := json.Unmarshal(a.body, out); err != nil {
		t.Fatalf("the 201 is not a TokenCredentialRequest: %v: %q", err, a.body)
	}
	return out
}

// requestJSON is a well-formed exchange request for token.
func requestJSON(t *testing.T, token string, csrPEM []byte) string {
	t.Helper()
	return string(mustJSON(t, &loginv1alpha1.TokenCredentialRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: loginv1alpha1.SchemeGroupVersion.String(), Kind: "TokenCredentialRequest"},
		Spec:     loginv1alpha1.TokenCredentialRequestSpec{Token: token, CertificateSigningRequest: csrPEM},
	}))
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// hiddenLength hides a reader's length, so the request is sent chunked,
// with no Content-Length for kip to refuse up front.
type hiddenLength struct{ io.Reader }

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestExchangeRefusesMalformedRequests sends hand-built requests to the
// running kip's exchange. Each refusal is a v1 Status with the exact code,
// quotes no token, is never cached, and is decided before any token is
// checked (the webhook, which sees every token kip checks, sees none).
func TestExchangeRefusesMalformedRequests(t *testing.T) {
	// The token an attacker would guess with: not a JWT, so checking it
	// would reach the webhook.
	secret := harness.UniqueName("guessed-token")
	valid := requestJSON(t, secret, nil)
	apiVersion := loginv1alpha1.SchemeGroupVersion.String()
	over := kipexchange.MaxBodyBytes + 1
	huge := `{"apiVersion":"` + apiVersion + `","kind":"TokenCredentialRequest","spec":{"token":"` + strings.Repeat("a", over) + `"}}`
	header := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	jsonCT := header("Content-Type", "application/json")

	tests := []struct {
		name     string
		body     func() io.Reader
		header   http.Header
		wantCode int
		wantMsg  string
	}{
		{name: "body over 64 KiB with Content-Length", body: func() io.Reader { return strings.NewReader(huge) }, header: jsonCT,
			wantCode: http.StatusRequestEntityTooLarge, wantMsg: "larger than 65536 bytes"},
		{name: "body over 64 KiB sent chunked", body: func() io.Reader { return hiddenLength{strings.NewReader(huge)} }, header: jsonCT,
			wantCode: http.StatusRequestEntityTooLarge, wantMsg: "larger than 65536 bytes"},
		{name: "endless chunked body", body: func() io.Reader { return hiddenLength{io.LimitReader(zeroes{}, 16<<20)} }, header: jsonCT,
			wantCode: http.StatusRequestEntityTooLarge, wantMsg: "larger than 65536 bytes"},
		{name: "not JSON", body: text(`{"apiVersion": nope`), header: jsonCT, wantCode: http.StatusBadRequest, wantMsg: "not valid JSON"},
		{name: "JSON followed by a second object", body: text(valid + `{"spec":{"token":"x"}}`), header: jsonCT, wantCode: http.StatusBadRequest, wantMsg: "not valid JSON"},
		{name: "JSON array", body: text(`[` + valid + `]`), header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "JSON null", body: text(`null`), header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "empty body", body: text(``), header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "YAML labelled JSON", body: text("apiVersion: " + apiVersion + "\nkind: TokenCredentialRequest\nspec:\n  token: " + secret + "\n"),
			header: jsonCT, wantCode: http.StatusBadRequest, wantMsg: "not valid JSON"},
		{name: "YAML", body: text("apiVersion: " + apiVersion + "\nkind: TokenCredentialRequest\nspec:\n  token: " + secret + "\n"),
			header: header("Content-Type", "application/yaml"), wantCode: http.StatusUnsupportedMediaType, wantMsg: "must be application/json"},
		{name: "protobuf", body: text("k8s\x00\x0a\x1f" + secret), header: header("Content-Type", "application/vnd.kubernetes.protobuf"),
			wantCode: http.StatusUnsupportedMediaType, wantMsg: "must be application/json"},
		{name: "JSON labelled text/plain", body: text(valid), header: header("Content-Type", "text/plain"), wantCode: http.StatusUnsupportedMediaType},
		{name: "JSON labelled application/json-patch+json", body: text(valid), header: header("Content-Type", "application/json-patch+json"), wantCode: http.StatusUnsupportedMediaType},
		{name: "no Content-Type", body: text(valid), header: http.Header{}, wantCode: http.StatusUnsupportedMediaType, wantMsg: "one Content-Type"},
		{name: "two Content-Types", body: text(valid), header: header("Content-Type", "application/json", "Content-Type", "application/yaml"),
			wantCode: http.StatusUnsupportedMediaType, wantMsg: "one Content-Type"},
		{name: "unparseable Content-Type", body: text(valid), header: header("Content-Type", "application/json; ;;="), wantCode: http.StatusUnsupportedMediaType},
		{name: "gzip-compressed body", body: func() io.Reader { return bytes.NewReader(gzipped(t, valid)) },
			header: header("Content-Type", "application/json", "Content-Encoding", "gzip"), wantCode: http.StatusUnsupportedMediaType, wantMsg: "compressed"},
		{name: "apiVersion login.kip.dev/v1", body: text(strings.Replace(valid, apiVersion, "login.kip.dev/v1", 1)), header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "kube-apiserver's TokenReview", body: text(`{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"` + secret + `"}}`),
			header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "another kind in the group", body: text(`{"apiVersion":"` + apiVersion + `","kind":"ListOptions"}`), header: jsonCT,
			wantCode: http.StatusBadRequest, wantMsg: "must be a login.kip.dev/v1alpha1 TokenCredentialRequest"},
		{name: "kind in other letter case", body: text(strings.Replace(valid, `"TokenCredentialRequest"`, `"tokencredentialrequest"`, 1)), header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "no apiVersion or kind", body: text(`{"spec":{"token":"` + secret + `"}}`), header: jsonCT, wantCode: http.StatusBadRequest, wantMsg: "apiVersion and kind are required"},
		{name: "unknown field choosing the user", body: text(strings.Replace(valid, `"spec":{`, `"spec":{"username":"admin",`, 1)), header: jsonCT,
			wantCode: http.StatusBadRequest, wantMsg: "unknown field"},
		{name: "token given twice", body: text(strings.Replace(valid, `"spec":{`, `"spec":{"token":"`+webhookToken+`",`, 1)), header: jsonCT,
			wantCode: http.StatusBadRequest, wantMsg: "duplicate field"},
		{name: "token as a number", body: text(`{"apiVersion":"` + apiVersion + `","kind":"TokenCredentialRequest","spec":{"token":12345}}`), header: jsonCT, wantCode: http.StatusBadRequest},
		{name: "CSR not base64", body: text(`{"apiVersion":"` + apiVersion + `","kind":"TokenCredentialRequest","spec":{"token":"` + secret + `","certificateSigningRequest":"-----BEGIN"}}`),
			header: jsonCT, wantCode: http.StatusBadRequest, wantMsg: "must be base64"},
		{name: "no token", body: text(requestJSON(t, "", nil)), header: jsonCT, wantCode: http.StatusUnprocessableEntity, wantMsg: "spec.token"},
		{name: "impersonating", body: text(requestJSON(t, webhookToken, nil)), header: header("Content-Type", "application/json", "impersonate-user", "admin"),
			wantCode: http.StatusBadRequest, wantMsg: "does not impersonate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reviews := env.webhook.Reviews()
			a := postExchange(t, kipConfig(), tt.body(), tt.header)
			if a.code != tt.wantCode {
				t.Fatalf("answer %d, want %d: %.300q", a.code, tt.wantCode, a.body)
			}
			s := a.status(t)
			if !strings.Contains(s.Message, tt.wantMsg) {
				t.Errorf("message %q does not say %q", s.Message, tt.wantMsg)
			}
			if bytes.Contains(a.body, []byte(secret)) || bytes.Contains(a.body, []byte(webhookToken)) || bytes.Contains(a.body, []byte("aaaaaaaa")) {
				t.Errorf("the answer repeats what was sent: %.300q", a.body)
			}
			if got := a.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if env.webhook.Reviews() != reviews {
				t.Error("a token was checked although the request was malformed")
			}
		})
	}
}

// TestExchangeHandBuiltRequestsThatAreServed: the friendly and the sly
// requests that are well formed get exactly the credential the token
// proves, and nothing the caller wrote into the request comes back.
func TestExchangeHandBuiltRequestsThatAreServed(t *testing.T) {
	forgedStatus := func(token string) string {
		body := requestJSON(t, token, nil)
		if !strings.Contains(body, `"status":{}`) {
			t.Fatalf("no empty status to replace in %s", body)
		}
		return strings.Replace(body, `"status":{}`,
			`"status":{"credential":{"expirationTimestamp":"2099-01-01T00:00:00Z","clientCertificateData":"forged"},"message":"ok"}`, 1)
	}
	tests := []struct {
		name     string
		body     string
		header   http.Header
		wantCert bool
	}{
		{name: "Content-Type with charset", body: requestJSON(t, webhookToken, nil), header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, wantCert: true},
		{name: "Content-Encoding identity", body: requestJSON(t, webhookToken, nil), header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"identity"}}, wantCert: true},
		{name: "caller-sent status with a refused token", body: forgedStatus(harness.UniqueName("wrong")), header: jsonHeader()},
		{name: "caller-sent status with a good token", body: forgedStatus(webhookToken), header: jsonHeader(), wantCert: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := postExchange(t, kipConfig(), strings.NewReader(tt.body), tt.header).answer(t)
			if out.Spec.Token != "" {
				t.Error("the token came back in the answer")
			}
			cred := out.Status.Credential
			if !tt.wantCert {
				if cred != nil || ptrString(out.Status.Message) != "authentication failed" {
					t.Fatalf("status %+v, want only the message \"authentication failed\"", out.Status)
				}
				return
			}
			if cred == nil || out.Status.Message != nil {
				t.Fatalf("status %+v, want a credential and no message", out.Status)
			}
			got, err := whoami(t, certConfig([]byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)))
			if err != nil {
				t.Fatal(err)
			}
			checkIdentity(t, got, carol())
		})
	}
}

// carol is what the upstream must see for webhookToken.
func carol() authenticationv1.UserInfo {
	return authenticationv1.UserInfo{
		Username: webhookUser.Username, UID: webhookUser.UID,
		Groups: append(slices.Clone(webhookUser.Groups), "system:authenticated"),
		Extra:  webhookUser.Extra,
	}
}

func text(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

// zeroes is an endless body.
type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// csrFor is a PEM CSR for key built from tmpl.
func csrFor(t *testing.T, tmpl *x509.CertificateRequest, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func privateKeyPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func mustKey(t *testing.T, make func() (crypto.Signer, error)) crypto.Signer {
	t.Helper()
	key, err := make()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestExchangeCSRKeyTypes: kip signs CSRs for ECDSA P-256 and P-384,
// Ed25519 and RSA of 2048 bits or more, and the certificate logs in through
// kip with that key; other curves and short RSA keys are a 422 naming the
// CSR, before the token is checked.
func TestExchangeCSRKeyTypes(t *testing.T) {
	ec := func(c elliptic.Curve) func() (crypto.Signer, error) {
		return func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) }
	}
	rsaKey := func(bits int) func() (crypto.Signer, error) {
		return func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) }
	}
	ed := func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }
	tests := []struct {
		name   string
		key    func() (crypto.Signer, error)
		accept bool
	}{
		{name: "ECDSA P-256", key: ec(elliptic.P256()), accept: true},
		{name: "ECDSA P-384", key: ec(elliptic.P384()), accept: true},
		{name: "Ed25519", key: ed, accept: true},
		{name: "RSA 2048", key: rsaKey(2048), accept: true},
		{name: "RSA 3072", key: rsaKey(3072), accept: true},
		{name: "ECDSA P-224", key: ec(elliptic.P224())},
		{name: "ECDSA P-521", key: ec(elliptic.P521())},
		{name: "RSA 1024", key: rsaKey(1024)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := mustKey(t, tt.key)
			reviews := env.webhook.Reviews()
			out, err := exchange(t, webhookToken, csrFor(t, &x509.CertificateRequest{}, key))
			if !tt.accept {
				if statusCode(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "spec.certificateSigningRequest") {
					t.Fatalf("exchange = %v (code %d), want 422 naming spec.certificateSigningRequest", err, statusCode(err))
				}
				if env.webhook.Reviews() != reviews {
					t.Error("the token was checked although the CSR was refused")
				}
				return
			}
			if err != nil || out.Status.Credential == nil {
				t.Fatalf("exchange = %+v, %v; want a certificate", out.Status, err)
			}
			cred := out.Status.Credential
			if cred.ClientKeyData != "" {
				t.Error("a private key came back although the client sent a CSR")
			}
			cert := parseCert(t, cred.ClientCertificateData)
			if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
				t.Fatal("the certificate is not for the CSR's key")
			}
			got, err := whoami(t, certConfig([]byte(cred.ClientCertificateData), privateKeyPEM(t, key)))
			if err != nil {
				t.Fatalf("logging in with the %s certificate: %v", tt.name, err)
			}
			checkIdentity(t, got, carol())
		})
	}
}

// Extension OIDs a CSR may ask for and kip's leaf may carry.
var (
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidNameConstraints  = asn1.ObjectIdentifier{2, 5, 29, 30}
	// oidKipExtras is kip's extension holding a user's extras
	// (internal/signer extrasOID).
	oidKipExtras = asn1.ObjectIdentifier{1, 2, 840, 113556, 1, 8000, 2554,
		0x592d, 0x1209, 0xce8e, 0x4e19, 0x9e4f, 0x8ad488, 0x38cc5f}
	oidUIDAttribute = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

func mustASN1(t *testing.T, v any) []byte {
	t.Helper()
	der, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// forgedExtras is kip's extras extension claiming extras, as a CSR might
// ask for it.
func forgedExtras(t *testing.T, extras map[string]string) []byte {
	t.Helper()
	utf8 := func(s string) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(s)}
	}
	type entry struct {
		Key    asn1.RawValue
		Values []asn1.RawValue
	}
	var entries []entry
	for _, k := range slices.Sorted(maps.Keys(extras)) {
		entries = append(entries, entry{Key: utf8(k), Values: []asn1.RawValue{utf8(extras[k])}})
	}
	return mustASN1(t, entries)
}

// TestExchangeIgnoresWhatTheCSRAsksFor: a CSR's subject and requested
// extensions (SANs, CA:true, other EKUs and key usages, name constraints,
// kip's own extras extension) are ignored. The certificate is a client-only
// leaf for the token's identity, and through kip the upstream sees carol,
// never admin or system:masters.
func TestExchangeIgnoresWhatTheCSRAsksFor(t *testing.T) {
	admin := pkix.Name{CommonName: "admin", Organization: []string{"system:masters"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUIDAttribute, Value: "admin-uid"}}}
	san := func(r *x509.CertificateRequest) {
		r.DNSNames = []string{"kubernetes.default.svc", "localhost"}
		r.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		r.EmailAddresses = []string{"admin@example.com"}
		r.URIs = []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/kube-system/sa/admin"}}
	}
	extension := func(id asn1.ObjectIdentifier, critical bool, value any) func(*x509.CertificateRequest) {
		return func(r *x509.CertificateRequest) {
			der, ok := value.([]byte)
			if !ok {
				der = mustASN1(t, value)
			}
			r.ExtraExtensions = append(r.ExtraExtensions, pkix.Extension{Id: id, Critical: critical, Value: der})
		}
	}
	type basicConstraints struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}
	ca := extension(oidBasicConstraints, true, basicConstraints{IsCA: true, MaxPathLen: 5})
	ekus := extension(oidExtKeyUsage, false, []asn1.ObjectIdentifier{
		{1, 3, 6, 1, 5, 5, 7, 3, 1}, // serverAuth
		{1, 3, 6, 1, 5, 5, 7, 3, 3}, // codeSigning
		{2, 5, 29, 37, 0},           // anyExtendedKeyUsage
	})
	// keyCertSign and cRLSign, bits 5 and 6.
	certSign := extension(oidKeyUsage, true, asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})
	nameConstraints := extension(oidNameConstraints, true, []byte{0x30, 0x00})
	extras := extension(oidKipExtras, false, forgedExtras(t, map[string]string{
		"original-user-info.kip.dev": `{"username":"admin","groups":["system:masters"]}`,
		"webhook.kip.dev/team":       "red",
	}))
	tests := []struct {
		name    string
		subject pkix.Name
		asks    []func(*x509.CertificateRequest)
	}{
		{name: "subject CN=admin, O=system:masters, UID", subject: admin},
		{name: "SANs", asks: []func(*x509.CertificateRequest){san}},
		{name: "BasicConstraints CA:true", asks: []func(*x509.CertificateRequest){ca}},
		{name: "serverAuth, codeSigning and any EKU", asks: []func(*x509.CertificateRequest){ekus}},
		{name: "keyCertSign key usage", asks: []func(*x509.CertificateRequest){certSign}},
		{name: "name constraints", asks: []func(*x509.CertificateRequest){nameConstraints}},
		{name: "kip's extras extension", asks: []func(*x509.CertificateRequest){extras}},
		{name: "all at once", subject: admin, asks: []func(*x509.CertificateRequest){san, ca, ekus, certSign, nameConstraints, extras}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := mustKey(t, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) })
			tmpl := &x509.CertificateRequest{Subject: tt.subject}
			for _, ask := range tt.asks {
				ask(tmpl)
			}
			cred := mustExchange(t, webhookToken, csrFor(t, tmpl, key))
			checkClientOnlyLeaf(t, parseCert(t, cred.ClientCertificateData))
			got, err := whoami(t, certConfig([]byte(cred.ClientCertificateData), privateKeyPEM(t, key)))
			if err != nil {
				t.Fatal(err)
			}
			checkIdentity(t, got, carol())
		})
	}
}

// checkClientOnlyLeaf insists on the certificate kip means to issue:
// carol's subject, not a CA, only digitalSignature and clientAuth, no
// names, and no extension kip does not write itself.
func checkClientOnlyLeaf(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	if cert.Subject.CommonName != webhookUser.Username || !slices.Equal(cert.Subject.Organization, webhookUser.Groups) {
		t.Errorf("subject %s, want CN=%s O=%v", cert.Subject, webhookUser.Username, webhookUser.Groups)
	}
	if cert.IsCA || !cert.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want an explicit non-CA", cert.IsCA, cert.BasicConstraintsValid)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %b, want digitalSignature only", cert.KeyUsage)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(cert.UnknownExtKeyUsage) > 0 {
		t.Errorf("EKUs %v %v, want clientAuth only", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
	}
	if len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses)+len(cert.URIs) > 0 {
		t.Errorf("SANs %v %v %v %v, want none", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs)
	}
	if len(cert.PermittedDNSDomains)+len(cert.ExcludedDNSDomains) > 0 {
		t.Error("the certificate carries name constraints")
	}
	allowed := []asn1.ObjectIdentifier{oidBasicConstraints, oidKeyUsage, oidExtKeyUsage, oidAuthorityKeyID, oidSubjectKeyID, oidKipExtras}
	for _, ext := range cert.Extensions {
		if !slices.ContainsFunc(allowed, ext.Id.Equal) {
			t.Errorf("the certificate carries extension %s, which kip does not write", ext.Id)
		}
		if ext.Id.Equal(oidSubjectAltName) {
			t.Error("the certificate carries a subjectAltName")
		}
	}
}

// resignedCSR is csr's request, naming csr's public key, but signed with
// signer: a CSR that does not prove possession of the key it names.
func resignedCSR(t *testing.T, csrPEM []byte, signer *ecdsa.PrivateKey, algorithm asn1.ObjectIdentifier) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(csr.RawTBSCertificateRequest)
	sig, err := ecdsa.SignASN1(rand.Reader, signer, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	der := mustASN1(t, struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{
		TBS:       asn1.RawValue{FullBytes: csr.RawTBSCertificateRequest},
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: algorithm},
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestExchangeRefusesCSRsWithoutProofOfPossession: a CSR naming a key its
// sender does not hold (someone else's, or kip's own signer CA's) is a 422
// naming the CSR, whatever the token, and the token is not even checked.
func TestExchangeRefusesCSRsWithoutProofOfPossession(t *testing.T) {
	ecdsaWithSHA256 := asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	sha256WithRSA := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	attacker := mustKey(t, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }).(*ecdsa.PrivateKey)
	victim := mustKey(t, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) })
	victimCSR := csrFor(t, &x509.CertificateRequest{}, victim)
	signerCSR := csrFor(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kip signer CA"}}, loadSigner(t).Key)
	tests := []struct {
		name string
		csr  []byte
	}{
		{name: "another's key, signed by the sender", csr: resignedCSR(t, victimCSR, attacker, ecdsaWithSHA256)},
		{name: "kip's signer CA key, signed by the sender", csr: resignedCSR(t, signerCSR, attacker, ecdsaWithSHA256)},
		{name: "signature algorithm that does not match the key", csr: resignedCSR(t, victimCSR, attacker, sha256WithRSA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reviews := env.webhook.Reviews()
			_, err := exchange(t, webhookToken, tt.csr)
			if statusCode(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "spec.certificateSigningRequest") {
				t.Fatalf("exchange = %v (code %d), want 422 naming spec.certificateSigningRequest", err, statusCode(err))
			}
			if env.webhook.Reviews() != reviews {
				t.Error("the token was checked although the CSR proves nothing")
			}
		})
	}
}

// floodKip starts a kip of the test's own, which knows the test webhook,
// so that spending its failure budget leaves the shared kip's alone.
func floodKip(t *testing.T) *rest.Config {
	t.Helper()
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	r, err := startReplica(t, ns, 0, "--authentication-token-webhook-config-file="+env.webhook.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return r.config
}

// failedExchange sends a token no verifier accepts. It returns the code and
// the Retry-After header.
func failedExchange(t *testing.T, kip *rest.Config, header http.Header) (int, string) {
	t.Helper()
	h := jsonHeader()
	for k, v := range header {
		h[k] = v
	}
	a := postExchange(t, kip, strings.NewReader(requestJSON(t, harness.UniqueName("guess"), nil)), h)
	switch a.code {
	case http.StatusCreated:
		if out := a.answer(t); out.Status.Credential != nil || ptrString(out.Status.Message) != "authentication failed" {
			t.Fatalf("a guessed token got %+v", out.Status)
		}
	case http.StatusTooManyRequests:
		checkTooMany(t, a)
	default:
		t.Fatalf("a guessed token got %d: %q", a.code, a.body)
	}
	return a.code, a.header.Get("Retry-After")
}

// checkTooMany insists on a 429 Status whose Retry-After, in the header
// and in the details, is a wait within one refill interval.
func checkTooMany(t *testing.T, a rawAnswer) {
	t.Helper()
	s := a.status(t)
	after, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || after < 1 || after > int(kipexchange.DefaultFailureInterval/time.Second) {
		t.Errorf("Retry-After %q, want 1 to %d seconds", a.header.Get("Retry-After"), kipexchange.DefaultFailureInterval/time.Second)
	}
	if s.Reason != metav1.StatusReasonTooManyRequests || s.Details == nil || int(s.Details.RetryAfterSeconds) != after {
		t.Errorf("429 status %+v does not carry the Retry-After %d", s, after)
	}
}

// TestExchangeFloodIsRateLimited floods a running kip's exchange from one
// address (every test client is 127.0.0.1). Good exchanges and malformed
// requests cost nothing; each failed token check costs one unit of the
// address's budget of kipexchange.DefaultFailureBurst; once it is spent every
// exchange from the address, a good token's included, is 429 with
// Retry-After, X-Forwarded-For does not make another address of it, and
// requests that are refused before any token check keep their own answers.
// After Retry-After a good token works again.
func TestExchangeFloodIsRateLimited(t *testing.T) {
	kip := floodKip(t)
	good := func() rawAnswer {
		return postExchange(t, kip, strings.NewReader(requestJSON(t, webhookToken, nil)), jsonHeader())
	}
	start := time.Now()
	// Successes and malformed requests do not spend the budget: all of
	// these before the burst leave it whole.
	for i := 0; i < 2*kipexchange.DefaultFailureBurst; i++ {
		if a := good(); a.code != http.StatusCreated || a.answer(t).Status.Credential == nil {
			t.Fatalf("good exchange %d: %d %q", i, a.code, a.body)
		}
		if a := postExchange(t, kip, strings.NewReader("{"), jsonHeader()); a.code != http.StatusBadRequest {
			t.Fatalf("malformed exchange %d: %d %q", i, a.code, a.body)
		}
	}
	for i := 0; i < kipexchange.DefaultFailureBurst; i++ {
		if code, _ := failedExchange(t, kip, nil); code != http.StatusCreated {
			t.Fatalf("failed exchange %d of the burst of %d was answered %d", i+1, kipexchange.DefaultFailureBurst, code)
		}
	}
	// The budget refills while the test runs: allow the units a slow
	// machine earned meanwhile, then insist on the 429.
	earned := int(time.Since(start)/kipexchange.DefaultFailureInterval) + 1
	limited := false
	for i := 0; i <= earned && !limited; i++ {
		code, _ := failedExchange(t, kip, http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Real-Ip": {"203.0.113.7"}})
		limited = code == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatalf("still no 429 after %d failed exchanges", kipexchange.DefaultFailureBurst+earned+1)
	}
	checkEmptyBudget(t, kip)

	// After Retry-After a good token is served again.
	a := good()
	for tries := 0; a.code == http.StatusTooManyRequests && tries < 5; tries++ {
		after, _ := strconv.Atoi(a.header.Get("Retry-After"))
		time.Sleep(time.Duration(after) * time.Second)
		a = good()
	}
	if a.code != http.StatusCreated || a.answer(t).Status.Credential == nil {
		t.Fatalf("after waiting Retry-After, a good exchange got %d %q", a.code, a.body)
	}
	if _, err := exchange(t, webhookToken, nil); err != nil {
		t.Errorf("the shared kip's exchange was limited by another kip's flood: %v", err)
	}
}

// checkEmptyBudget: with the budget just spent, a good token, a
// malformed request and a forwarded-for header all get 429, while a GET
// and an impersonating request keep their own answers, which come before
// the budget. A unit earned back between two requests lets one through,
// so each is retried after spending that unit again.
func checkEmptyBudget(t *testing.T, kip *rest.Config) {
	t.Helper()
	limited := []struct {
		name   string
		body   string
		header http.Header
	}{
		{name: "good token", body: requestJSON(t, webhookToken, nil), header: jsonHeader()},
		{name: "good token from a forwarded-for address", body: requestJSON(t, webhookToken, nil),
			header: http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.1"}}},
		{name: "malformed request", body: "{", header: jsonHeader()},
	}
	for _, tt := range limited {
		t.Run("limited/"+tt.name, func(t *testing.T) {
			for round := 0; ; round++ {
				a := postExchange(t, kip, strings.NewReader(tt.body), tt.header)
				if a.code == http.StatusTooManyRequests {
					checkTooMany(t, a)
					return
				}
				if round == 2 {
					t.Fatalf("with the budget spent: %d %q, want 429", a.code, a.body)
				}
				// A unit came back meanwhile; spend it and try again.
				for code := 0; code != http.StatusTooManyRequests; {
					code, _ = failedExchange(t, kip, nil)
				}
			}
		})
	}
	t.Run("not limited/GET", func(t *testing.T) {
		client, err := rest.HTTPClientFor(kip)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(kip.Host + kipexchange.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET with the budget spent: %d, want 405", resp.StatusCode)
		}
	})
	t.Run("not limited/impersonating", func(t *testing.T) {
		a := postExchange(t, kip, strings.NewReader(requestJSON(t, webhookToken, nil)),
			http.Header{"Content-Type": {"application/json"}, "Impersonate-User": {"admin"}})
		if a.code != http.StatusBadRequest {
			t.Errorf("impersonating with the budget spent: %d %q, want 400", a.code, a.body)
		}
	})
}
