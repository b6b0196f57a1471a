package authn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"

	"github.com/kip-proxy/kip/internal/pki"
)

// countingVerifier stands in for the x509 authenticator and counts how
// often it is really asked.
type countingVerifier struct {
	calls int
	err   error
}

func (c *countingVerifier) AuthenticateRequest(*http.Request) (*authenticator.Response, bool, error) {
	c.calls++
	if c.err != nil {
		return nil, false, c.err
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: "alice"}}, true, nil
}

// swappableCA is a CA provider whose bundle a test can change.
type swappableCA struct {
	dynamiccertificates.CAContentProvider
	bundle []byte
}

func (s *swappableCA) CurrentCABundleContent() []byte { return s.bundle }

func TestVerifiedCertificates(t *testing.T) {
	ca := mustCA(t, "ca-one", 24*time.Hour)
	other := mustCA(t, "ca-two", 24*time.Hour)
	shortCA := mustCA(t, "short-ca", time.Minute)
	leaf := mustLeaf(t, ca, time.Now().Add(time.Hour))
	soonExpiring := mustLeaf(t, ca, time.Now().Add(2*time.Second))

	for _, tc := range []struct {
		name      string
		ttl       time.Duration
		bundle    []byte
		chain     []*x509.Certificate
		verifyErr error
		// between runs before the second request
		between   func(*swappableCA, *time.Time)
		wantCalls int
	}{
		{name: "same chain and bundle reuse the verification", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf}, wantCalls: 1},
		{name: "a changed CA bundle verifies again", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			between: func(s *swappableCA, _ *time.Time) { s.bundle = other.CertPEM }, wantCalls: 2},
		{name: "failures are not remembered", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			verifyErr: errors.New("x509: certificate signed by unknown authority"), wantCalls: 2},
		{name: "not past the TTL", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			between: func(_ *swappableCA, now *time.Time) { *now = now.Add(2 * time.Minute) }, wantCalls: 2},
		{name: "not past the certificate's expiry", ttl: time.Hour, bundle: ca.CertPEM, chain: []*x509.Certificate{soonExpiring},
			between: func(_ *swappableCA, now *time.Time) { *now = now.Add(3 * time.Second) }, wantCalls: 2},
		{name: "not past a CA's expiry", ttl: time.Hour, bundle: append(append([]byte{}, ca.CertPEM...), shortCA.CertPEM...), chain: []*x509.Certificate{leaf},
			between: func(_ *swappableCA, now *time.Time) { *now = now.Add(2 * time.Minute) }, wantCalls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			cas := &swappableCA{bundle: tc.bundle}
			verifier := &countingVerifier{err: tc.verifyErr}
			v := newVerifiedCertificates(verifier, cas, tc.ttl)
			v.now = func() time.Time { return now }
			v.cache = newTestCache(func() time.Time { return now })
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.TLS = &tls.ConnectionState{PeerCertificates: tc.chain}

			_, _, _ = v.AuthenticateRequest(req)
			if tc.between != nil {
				tc.between(cas, &now)
			}
			resp, ok, err := v.AuthenticateRequest(req)
			if verifier.calls != tc.wantCalls {
				t.Fatalf("the chain was verified %d times, want %d", verifier.calls, tc.wantCalls)
			}
			if tc.verifyErr == nil && (!ok || err != nil || resp.User.GetName() != "alice") {
				t.Fatalf("got %v %v %v", resp, ok, err)
			}
			if tc.verifyErr != nil && (ok || err == nil) {
				t.Fatalf("a failed verification passed: %v %v", ok, err)
			}
		})
	}
}

func TestVerifiedCertificatesWithoutCertificates(t *testing.T) {
	verifier := &countingVerifier{}
	v := newVerifiedCertificates(verifier, &swappableCA{}, time.Minute)
	for range 2 {
		_, _, _ = v.AuthenticateRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	}
	if verifier.calls != 2 {
		t.Fatalf("requests without certificates must always go to the authenticator, got %d calls", verifier.calls)
	}
}

func mustCA(t *testing.T, name string, validity time.Duration) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, validity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca *pki.CA, notAfter time.Time) *x509.Certificate {
	t.Helper()
	certPEM, _, err := ca.IssueClient(pki.ClientCertRequest{CommonName: "alice", NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type fakeClock struct{ now func() time.Time }

func (c fakeClock) Now() time.Time { return c.now() }

func newTestCache(now func() time.Time) *cache.LRUExpireCache {
	return cache.NewLRUExpireCacheWithClock(16, fakeClock{now})
}
