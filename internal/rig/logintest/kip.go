package logintest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// ExchangePath is where kip serves the credential exchange.
const ExchangePath = "/apis/login.kip.dev/v1alpha1/tokencredentialrequests"

// Kip is a fake kip credential exchange endpoint.
type Kip struct {
	Server *httptest.Server
	// CertTTL is the lifetime of issued certificates.
	CertTTL time.Duration
	// RetryAfter is the Retry-After value of 429 answers.
	RetryAfter string
	// RateLimitStatusBody makes 429 answers carry a metav1.Status with
	// details.retryAfterSeconds instead of plain text.
	RateLimitStatusBody bool

	mu     sync.Mutex
	accept func(token string) bool

	// rateLimited is how many of the next requests get 429.
	rateLimited atomic.Int32
	requests    atomic.Int32
	issued      atomic.Int32

	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
}

// NewKip starts the endpoint; accept decides which tokens are good.
func NewKip(t testing.TB, accept func(token string) bool) *Kip {
	t.Helper()
	k := &Kip{CertTTL: time.Hour, RetryAfter: "1", accept: accept}
	var err error
	if k.caKey, k.caCert, err = newCA(); err != nil {
		t.Fatal(err)
	}
	k.Server = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.Server.Close)
	return k
}

// SetAccept replaces the token check.
func (k *Kip) SetAccept(accept func(string) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.accept = accept
}

// RateLimitNext makes the next n requests get 429.
func (k *Kip) RateLimitNext(n int32) { k.rateLimited.Store(n) }

// Requests counts every exchange request, Issued the certificates.
func (k *Kip) Requests() int32 { return k.requests.Load() }

// Issued counts issued certificates.
func (k *Kip) Issued() int32 { return k.issued.Load() }

// ServingCAPEM is the CA of the endpoint's TLS certificate.
func (k *Kip) ServingCAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Server.Certificate().Raw})
}

// ClientCA is the CA that signs issued certificates.
func (k *Kip) ClientCA() *x509.Certificate { return k.caCert }

func (k *Kip) serve(w http.ResponseWriter, r *http.Request) {
	k.requests.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != ExchangePath {
		writeStatus(w, http.StatusNotFound, "not found", 0)
		return
	}
	if k.rateLimited.Add(-1) >= 0 {
		k.tooManyRequests(w)
		return
	}
	var req loginv1alpha1.TokenCredentialRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error(), 0)
		return
	}
	k.mu.Lock()
	ok := k.accept(req.Spec.Token)
	k.mu.Unlock()
	if !ok {
		msg := "authentication failed"
		writeJSON(w, http.StatusCreated, answer(loginv1alpha1.TokenCredentialRequestStatus{Message: &msg}))
		return
	}
	certPEM, exp, err := k.sign(req.Spec.CertificateSigningRequest)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error(), 0)
		return
	}
	k.issued.Add(1)
	writeJSON(w, http.StatusCreated, answer(loginv1alpha1.TokenCredentialRequestStatus{
		Credential: &loginv1alpha1.ClusterCredential{ExpirationTimestamp: metav1.NewTime(exp), ClientCertificateData: string(certPEM)},
	}))
}

func (k *Kip) tooManyRequests(w http.ResponseWriter) {
	w.Header().Set("Retry-After", k.RetryAfter)
	if !k.RateLimitStatusBody {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte("slow down"))
		return
	}
	var secs int32
	_ = json.Unmarshal([]byte(k.RetryAfter), &secs)
	writeStatus(w, http.StatusTooManyRequests, "too many requests", secs)
}

// sign checks the CSR's proof of possession and signs its key.
func (k *Kip) sign(csrPEM []byte) ([]byte, time.Time, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, time.Time{}, errors.New("a PEM certificate signing request is required")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	exp := now.Add(k.CertTTL)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "alice"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     exp,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, k.caCert, csr.PublicKey, k.caKey)
	if err != nil {
		return nil, time.Time{}, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), exp, nil
}

func answer(s loginv1alpha1.TokenCredentialRequestStatus) loginv1alpha1.TokenCredentialRequest {
	return loginv1alpha1.TokenCredentialRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: loginv1alpha1.SchemeGroupVersion.String(), Kind: "TokenCredentialRequest"},
		Status:   s,
	}
}

func writeStatus(w http.ResponseWriter, code int, msg string, retryAfter int32) {
	s := metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure, Message: msg, Code: int32(code),
	}
	if retryAfter > 0 {
		s.Reason = metav1.StatusReasonTooManyRequests
		s.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfter}
	}
	writeJSON(w, code, s)
}

func newCA() (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kip test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}
