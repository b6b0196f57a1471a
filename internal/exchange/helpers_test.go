package exchange

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kip-proxy/kip/internal/authlimit"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// Tokens the fake authenticator knows.
const (
	goodToken      = "good-token"
	badToken       = "bad-token"
	brokenToken    = "idp-unreachable"
	busyToken      = "no-review-slot-free"
	namelessToken  = "accepted-without-user"
	otherAudToken  = "token-for-another-audience"
	testPeer       = "192.0.2.10:40000"
	testTTL        = 7 * time.Minute
	testAudience   = "https://kip.test"
	testUserName   = "alice@example.com"
	testUserUID    = "alice-uid"
	testExtraKey   = "example.com/scopes"
	testExtraValue = "all"
)

var testEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeTokens accepts goodToken as alice, and knows a few ways to fail. It
// counts the calls and checks that each came with a deadline.
type fakeTokens struct {
	mu          sync.Mutex
	calls       int
	accepted    int
	noDeadline  bool
	gotAudience authenticator.Audiences
}

func (f *fakeTokens) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		f.noDeadline = true
	}
	f.gotAudience, _ = authenticator.AudiencesFrom(ctx)
	switch token {
	case goodToken:
		f.accepted++
		return &authenticator.Response{Audiences: authenticator.Audiences{testAudience}, User: &user.DefaultInfo{
			Name:   testUserName,
			UID:    testUserUID,
			Groups: []string{"devs", user.AllAuthenticated, "ops"},
			Extra: map[string][]string{
				testExtraKey:         {testExtraValue},
				user.CredentialIDKey: {"JTI=token-id"},
			},
		}}, true, nil
	case brokenToken:
		return nil, false, errors.New("dial tcp 192.0.2.99:443: connect: connection refused")
	case busyToken:
		return nil, false, fmt.Errorf("webhook: %w", authlimit.ErrBusy)
	case namelessToken:
		return &authenticator.Response{User: &user.DefaultInfo{}}, true, nil
	case otherAudToken:
		return &authenticator.Response{Audiences: authenticator.Audiences{"https://elsewhere.test"}, User: &user.DefaultInfo{Name: "mallory"}}, true, nil
	}
	return nil, false, nil
}

func (f *fakeTokens) stats() (calls, accepted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.accepted
}

// testCA is an Issuer backed by a throwaway CA. It records what it was
// asked, and fails when told to.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	now  func() time.Time
	fail bool

	mu    sync.Mutex
	asked []issueCall
}

type issueCall struct {
	user user.Info
	pub  crypto.PublicKey
	ttl  time.Duration
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kip test signer"},
		NotBefore:             testEpoch.Add(-time.Hour),
		NotAfter:              testEpoch.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, now: func() time.Time { return testEpoch }}
}

func (ca *testCA) Issue(u user.Info, pub crypto.PublicKey, ttl time.Duration) ([]byte, time.Time, error) {
	ca.mu.Lock()
	ca.asked = append(ca.asked, issueCall{user: u, pub: pub, ttl: ttl})
	ca.mu.Unlock()
	if ca.fail {
		return nil, time.Time{}, errors.New("the signer's key is unreadable at /secret/ca.key")
	}
	notAfter := ca.now().Add(ttl).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: u.GetName(), Organization: u.GetGroups()},
		NotBefore:    ca.now().Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, time.Time{}, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), notAfter, nil
}

func (ca *testCA) calls() []issueCall {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return append([]issueCall(nil), ca.asked...)
}

// fixture is one exchange with its fakes.
type fixture struct {
	handler http.Handler
	tokens  *fakeTokens
	ca      *testCA
	clock   *clocktesting.FakePassiveClock
}

func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{tokens: &fakeTokens{}, ca: newTestCA(t), clock: clocktesting.NewFakePassiveClock(testEpoch)}
	c := Config{Tokens: f.tokens, Issuer: f.ca, TTL: testTTL, APIAudiences: authenticator.Audiences{testAudience}, Clock: f.clock}
	if edit != nil {
		edit(&c)
	}
	h, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	f.handler = h
	return f
}

// post sends body as JSON from testPeer unless edit changes the request.
func (f *fixture) post(body []byte, edit func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	r.RemoteAddr = testPeer
	r.Header.Set("Content-Type", "application/json")
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// requestBody is a TokenCredentialRequest as a client sends it.
func requestBody(t testing.TB, spec loginv1alpha1.TokenCredentialRequestSpec) []byte {
	t.Helper()
	return mustJSON(t, &loginv1alpha1.TokenCredentialRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: "login.kip.dev/v1alpha1", Kind: "TokenCredentialRequest"},
		ObjectMeta: metav1.ObjectMeta{Name: "login"},
		Spec:       spec,
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// csrFor is a PEM CSR signed by signer, claiming signer's own key.
func csrFor(t testing.TB, signer crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:admin", Organization: []string{"system:masters"}}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// csrSignedByOther is a CSR that claims claimed's public key but is
// signed by signer: its sender does not prove it holds the claimed key.
func csrSignedByOther(t testing.TB, claimed, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	block, _ := pem.Decode(csrFor(t, claimed))
	var req struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(block.Bytes, &req); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(req.TBS.FullBytes)
	sig, err := ecdsa.SignASN1(rand.Reader, signer, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	req.Signature = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	der, err := asn1.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// quietKlog keeps the exchange's log lines out of test output.
func quietKlog(t testing.TB) {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	t.Cleanup(func() { klog.LogToStderr(true) })
}
