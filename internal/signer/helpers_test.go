package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	certutil "k8s.io/client-go/util/cert"
	clocktesting "k8s.io/utils/clock/testing"
)

// start is a fixed instant, so that tests read the same on every run.
var start = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func newClock() *clocktesting.FakeClock { return clocktesting.NewFakeClock(start) }

func mustSigner(t *testing.T, now time.Time, validity time.Duration) *signingCA {
	t.Helper()
	s, err := generateSigningCA(now, validity)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// staticCA is a CA with no source, for tests of issuing and reading.
func staticCA(t *testing.T, clk *clocktesting.FakeClock, opts Options) *CA {
	t.Helper()
	opts.Clock = clk
	opts, err := opts.complete()
	if err != nil {
		t.Fatal(err)
	}
	c := &CA{name: "test", opts: opts}
	c.update(func(*trust) *trust { return newTrust(mustSigner(t, clk.Now(), 30*24*time.Hour), nil, clk.Now()) })
	return c
}

func clientKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustParse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// issue signs a certificate for u with a fresh key and parses it.
func issue(t *testing.T, c *CA, name string, groups ...string) *x509.Certificate {
	t.Helper()
	certPEM, _, err := c.Issue(userInfo(name, groups...), clientKey(t).Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, certPEM)
}

// authenticate runs cert through kip's authenticator for c, as the TLS
// layer would hand it over.
func authenticate(c *CA, certs ...*x509.Certificate) (*authenticator.Response, bool, error) {
	req, _ := http.NewRequest(http.MethodGet, "https://kip.example/api", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: certs}
	return NewAuthenticator(c).AuthenticateRequest(req)
}

func writePair(t *testing.T, dir string, s *signingCA) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	writeFile(t, keyFile, s.keyPEM)
	writeFile(t, certFile, s.certPEM)
	return certFile, keyFile
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// countingListener counts bundle change notifications.
type countingListener struct{ n atomic.Int32 }

func (l *countingListener) Enqueue() { l.n.Add(1) }

// bundleCerts parses the CA's trusted bundle.
func bundleCerts(t *testing.T, c *CA) []*x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(c.CurrentCABundleContent())
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func trusts(t *testing.T, c *CA, ca *x509.Certificate) bool {
	t.Helper()
	for _, b := range bundleCerts(t, c) {
		if b.Equal(ca) {
			return true
		}
	}
	return false
}
