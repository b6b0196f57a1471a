package authn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"

	"github.com/kip-proxy/kip/internal/rig/pki"
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

// TestVerifiedCertificates sends two requests with the same chain, on the
// same connection (the same *tls.ConnectionState, as Go's servers hand it
// to every request of a connection) and on two connections, and counts how
// often the chain was really verified.
func TestVerifiedCertificates(t *testing.T) {
	ca := pki.NewCAForTest(t, "ca-one", 24*time.Hour)
	other := pki.NewCAForTest(t, "ca-two", 24*time.Hour)
	shortCA := pki.NewCAForTest(t, "short-ca", time.Minute)
	leaf := mustLeaf(t, ca, time.Now().Add(time.Hour))
	soonExpiring := mustLeaf(t, ca, time.Now().Add(2*time.Second))
	notYetValid := mustLeafFrom(t, ca, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	refused := errors.New("x509: certificate signed by unknown authority")

	for _, tc := range []struct {
		name      string
		ttl       time.Duration
		bundle    []byte
		chain     []*x509.Certificate
		verifyErr error
		// between runs before the second request
		between func(*swappableCA, *time.Time)
		// wantCalls on two connections, wantCallsOneConn on one
		wantCalls, wantCallsOneConn int
	}{
		{name: "same chain and bundle reuse the verification", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			wantCalls: 1, wantCallsOneConn: 1},
		{name: "a changed CA bundle verifies again", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			between: func(s *swappableCA, _ *time.Time) { s.bundle = other.CertPEM }, wantCalls: 2, wantCallsOneConn: 2},
		{name: "a CA removed from the bundle verifies again", ttl: time.Minute, bundle: append(append([]byte{}, other.CertPEM...), ca.CertPEM...), chain: []*x509.Certificate{leaf},
			between: func(s *swappableCA, _ *time.Time) { s.bundle = other.CertPEM }, wantCalls: 2, wantCallsOneConn: 2},
		{name: "failures are remembered only within a connection", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			verifyErr: refused, wantCalls: 2, wantCallsOneConn: 1},
		{name: "a failure is forgotten when the bundle changes", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			verifyErr: refused, between: func(s *swappableCA, _ *time.Time) { s.bundle = other.CertPEM }, wantCalls: 2, wantCallsOneConn: 2},
		{name: "a failure before the certificate's NotBefore is not remembered", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{notYetValid},
			verifyErr: refused, wantCalls: 2, wantCallsOneConn: 2},
		{name: "not past the TTL", ttl: time.Minute, bundle: ca.CertPEM, chain: []*x509.Certificate{leaf},
			between: func(_ *swappableCA, now *time.Time) { *now = now.Add(2 * time.Minute) }, wantCalls: 2, wantCallsOneConn: 2},
		{name: "not past the certificate's expiry", ttl: time.Hour, bundle: ca.CertPEM, chain: []*x509.Certificate{soonExpiring},
			between: func(_ *swappableCA, now *time.Time) { *now = now.Add(3 * time.Second) }, wantCalls: 2, wantCallsOneConn: 2},
		{name: "not past a CA's expiry", ttl: time.Hour, bundle: append(append([]byte{}, ca.CertPEM...), shortCA.CertPEM...), chain: []*x509.Certificate{leaf},
			between: func(_ *swappableCA, now *time.Time) { *now = now.Add(2 * time.Minute) }, wantCalls: 2, wantCallsOneConn: 2},
	} {
		for _, oneConn := range []bool{false, true} {
			name, want := tc.name+", two connections", tc.wantCalls
			if oneConn {
				name, want = tc.name+", one connection", tc.wantCallsOneConn
			}
			t.Run(name, func(t *testing.T) {
				now := time.Now()
				cas := &swappableCA{bundle: tc.bundle}
				verifier := &countingVerifier{err: tc.verifyErr}
				v := newVerifiedCertificates(verifier, cas, tc.ttl)
				v.now = func() time.Time { return now }
				v.cache = newTestCache(func() time.Time { return now })
				v.conns = newTestCache(func() time.Time { return now })
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.TLS = &tls.ConnectionState{PeerCertificates: tc.chain}

				_, _, _ = v.AuthenticateRequest(req)
				if tc.between != nil {
					tc.between(cas, &now)
				}
				if !oneConn {
					req.TLS = &tls.ConnectionState{PeerCertificates: tc.chain}
				}
				resp, ok, err := v.AuthenticateRequest(req)
				if verifier.calls != want {
					t.Fatalf("the chain was verified %d times, want %d", verifier.calls, want)
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

func mustLeaf(t *testing.T, ca *pki.CA, notAfter time.Time) *x509.Certificate {
	t.Helper()
	return mustLeafFrom(t, ca, time.Time{}, notAfter)
}

func mustLeafFrom(t *testing.T, ca *pki.CA, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	c, err := ca.ClientCertificate(pki.ClientCertRequest{CommonName: "alice", NotBefore: notBefore, NotAfter: notAfter})
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

// TestVerifiedCertificatesPerSource: with a union of sources, a change in
// any one of them (here the cluster's client CA reloaded without the CA
// that signed the chain) ends the reuse on an open connection at once.
func TestVerifiedCertificatesPerSource(t *testing.T) {
	ca := pki.NewCAForTest(t, "ca-one", 24*time.Hour)
	other := pki.NewCAForTest(t, "ca-two", 24*time.Hour)
	leaf := mustLeaf(t, ca, time.Now().Add(time.Hour))
	for _, changed := range []int{0, 1} {
		t.Run(fmt.Sprintf("source %d changes", changed), func(t *testing.T) {
			sources := []*swappableCA{{bundle: other.CertPEM}, {bundle: ca.CertPEM}}
			verifier := &countingVerifier{}
			v := newVerifiedCertificates(verifier, UnionOf(sources[0], sources[1]), time.Minute)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
			for range 3 {
				_, _, _ = v.AuthenticateRequest(req)
			}
			if verifier.calls != 1 {
				t.Fatalf("the chain was verified %d times on one connection, want 1", verifier.calls)
			}
			sources[changed].bundle = append(append([]byte{}, sources[changed].bundle...), '\n')
			_, _, _ = v.AuthenticateRequest(req)
			if verifier.calls != 2 {
				t.Fatalf("after source %d changed, the chain was verified %d times, want 2", changed, verifier.calls)
			}
		})
	}
}
