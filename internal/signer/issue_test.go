package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestIssue(t *testing.T) {
	clk := newClock()
	ca := staticCA(t, clk, Options{MaxCertificateTTL: 12 * time.Hour})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	huge := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 8200), E: 65537}
	// A point off the curve can only be built from raw coordinates.
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)} //nolint:staticcheck // SA1019
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"dev", user.AllAuthenticated}}

	tests := []struct {
		name    string
		u       user.Info
		pub     crypto.PublicKey
		ttl     time.Duration
		wantErr string
	}{
		{"ECDSA P-256", alice, clientKey(t).Public(), time.Hour, ""},
		{"ECDSA P-384", alice, p384.Public(), time.Hour, ""},
		{"Ed25519", alice, edPub, time.Hour, ""},
		{"RSA 2048", alice, rsa2048.Public(), time.Hour, ""},
		{"longest TTL", alice, clientKey(t).Public(), 12 * time.Hour, ""},
		{"zero TTL", alice, clientKey(t).Public(), 0, "not allowed"},
		{"negative TTL", alice, clientKey(t).Public(), -time.Hour, "not allowed"},
		{"TTL above the maximum", alice, clientKey(t).Public(), 12*time.Hour + time.Second, "not allowed"},
		{"ECDSA P-224", alice, p224.Public(), time.Hour, "P-256 or P-384"},
		{"ECDSA point off the curve", alice, offCurve, time.Hour, "invalid"},
		{"RSA 1024", alice, rsa1024.Public(), time.Hour, "2048 to 8192"},
		{"RSA above 8192 bits", alice, huge, time.Hour, "2048 to 8192"},
		{"empty RSA key", alice, &rsa.PublicKey{}, time.Hour, "empty"},
		{"typed nil ECDSA key", alice, (*ecdsa.PublicKey)(nil), time.Hour, "no public key"},
		{"no key", alice, nil, time.Hour, "no public key"},
		{"private key given as public", alice, clientKey(t), time.Hour, "not accepted"},
		{"ECDSA key by value", alice, *p384.Public().(*ecdsa.PublicKey), time.Hour, "not accepted"},
		{"empty user name", userInfo(""), clientKey(t).Public(), time.Hour, "user name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, notAfter, err := ca.Issue(tt.u, tt.pub, tt.ttl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLeaf(t, ca, mustParse(t, certPEM), clk.Now(), notAfter, tt.ttl)
		})
	}
}

func checkLeaf(t *testing.T, ca *CA, leaf *x509.Certificate, now, notAfter time.Time, ttl time.Duration) {
	t.Helper()
	if !leaf.NotAfter.Equal(notAfter) || !notAfter.Equal(now.Add(ttl)) {
		t.Errorf("NotAfter %v, returned %v, want %v", leaf.NotAfter, notAfter, now.Add(ttl))
	}
	if !leaf.NotBefore.Equal(now.Add(-clockSkew)) {
		t.Errorf("NotBefore %v, want %v", leaf.NotBefore, now.Add(-clockSkew))
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("the leaf may act as a CA")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("usage %v / %v, want digital signature / client auth only", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v is not random-looking", leaf.SerialNumber)
	}
	if slices.Contains(leaf.Subject.Organization, user.AllAuthenticated) {
		t.Error("system:authenticated was written into the certificate")
	}
	if err := leaf.CheckSignatureFrom(ca.state.Load().signing.cert); err != nil {
		t.Error(err)
	}
}

func TestIssueNeverOutlivesTheCA(t *testing.T) {
	clk := newClock()
	ca := staticCA(t, clk, Options{MaxCertificateTTL: 24 * time.Hour})
	caNotAfter := ca.state.Load().signing.cert.NotAfter
	clk.SetTime(caNotAfter.Add(-time.Hour))
	_, notAfter, err := ca.Issue(userInfo("alice"), clientKey(t).Public(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !notAfter.Equal(caNotAfter) {
		t.Fatalf("NotAfter %v, want the CA's %v", notAfter, caNotAfter)
	}
	clk.SetTime(caNotAfter)
	if _, _, err := ca.Issue(userInfo("alice"), clientKey(t).Public(), time.Hour); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired CA issued a certificate: %v", err)
	}
}
