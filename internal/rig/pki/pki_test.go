package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/util/keyutil"
)

func TestNewCA(t *testing.T) {
	tests := []struct {
		name     string
		validity time.Duration
		wantErr  bool
	}{
		{name: "one day", validity: 24 * time.Hour},
		{name: "zero validity", validity: 0, wantErr: true},
		{name: "negative validity", validity: -time.Hour, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := NewCA("test-ca", tt.validity)
			if tt.wantErr {
				if err == nil {
					t.Fatal("NewCA succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "test-ca" {
				t.Errorf("got IsCA=%v CN=%q, want a CA named test-ca", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
			}
			parsed, err := ParseCertPEM(ca.CertPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !parsed.Equal(ca.Cert) {
				t.Error("CertPEM does not encode Cert")
			}
			keyPEM, err := ca.KeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := keyutil.ParsePrivateKeyPEM(keyPEM); err != nil {
				t.Errorf("KeyPEM does not parse: %v", err)
			}
		})
	}
}

func TestIssueClient(t *testing.T) {
	ca, err := NewCA("client-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	tests := []struct {
		name    string
		req     ClientCertRequest
		wantErr bool // from IssueClient itself
		// verifyAs is the usage the certificate is verified for; the zero
		// value means ClientAuth.
		verifyAs   x509.ExtKeyUsage
		wantVerify func(error) bool
	}{
		{
			name:       "defaults are a valid client certificate",
			req:        ClientCertRequest{CommonName: "alice", Organizations: []string{"dev", "ops"}},
			wantVerify: isNil,
		},
		{
			name:       "expired",
			req:        ClientCertRequest{CommonName: "alice", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)},
			wantVerify: isInvalid(x509.Expired),
		},
		{
			name:       "expired with only NotBefore set",
			req:        ClientCertRequest{CommonName: "alice", NotBefore: now.Add(-48 * time.Hour)},
			wantVerify: isInvalid(x509.Expired),
		},
		{
			name:       "not yet valid",
			req:        ClientCertRequest{CommonName: "alice", NotBefore: now.Add(time.Hour)},
			wantVerify: isInvalid(x509.Expired), // crypto/x509 reports both ends as Expired
		},
		{
			name:       "server auth only is refused for client auth",
			req:        ClientCertRequest{CommonName: "alice", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
			wantVerify: isInvalid(x509.IncompatibleUsage),
		},
		{
			name:       "server auth only verifies as a server",
			req:        ClientCertRequest{CommonName: "alice", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
			verifyAs:   x509.ExtKeyUsageServerAuth,
			wantVerify: isNil,
		},
		{
			name:       "empty usage list means any usage",
			req:        ClientCertRequest{CommonName: "alice", ExtKeyUsage: []x509.ExtKeyUsage{}},
			wantVerify: isNil,
		},
		{
			name:    "NotAfter before NotBefore",
			req:     ClientCertRequest{CommonName: "alice", NotAfter: now.Add(-time.Hour)},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.IssueClient(tt.req)
			if tt.wantErr {
				if err == nil {
					t.Fatal("IssueClient succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := mustParse(t, certPEM, keyPEM)
			if c.Subject.CommonName != tt.req.CommonName || !slices.Equal(c.Subject.Organization, tt.req.Organizations) {
				t.Errorf("subject = %v, want CN=%s O=%v", c.Subject, tt.req.CommonName, tt.req.Organizations)
			}
			usage := tt.verifyAs
			if usage == 0 {
				usage = x509.ExtKeyUsageClientAuth
			}
			if err := verify(c, ca, usage); !tt.wantVerify(err) {
				t.Errorf("verify: unexpected result %v", err)
			}
			// Whatever else holds, a different CA must never vouch for it.
			if err := verify(c, other, usage); err == nil {
				t.Error("certificate verified against an unrelated CA")
			}
		})
	}
}

func TestIssueServing(t *testing.T) {
	ca, err := NewCA("serving-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		hosts    []string
		validity time.Duration
		wantErr  bool
		wantIPs  []string
		wantDNS  []string
	}{
		{
			name:     "loopback",
			hosts:    []string{"127.0.0.1", "localhost", "::1"},
			validity: time.Hour,
			wantIPs:  []string{"127.0.0.1", "::1"},
			wantDNS:  []string{"localhost"},
		},
		{name: "no hosts", validity: time.Hour, wantErr: true},
		{name: "no validity", hosts: []string{"localhost"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.IssueServing(tt.hosts, tt.validity)
			if tt.wantErr {
				if err == nil {
					t.Fatal("IssueServing succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := mustParse(t, certPEM, keyPEM)
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) || !slices.Equal(c.DNSNames, tt.wantDNS) {
				t.Errorf("SANs = IPs %v DNS %v, want IPs %v DNS %v", ips, c.DNSNames, tt.wantIPs, tt.wantDNS)
			}
			if err := verify(c, ca, x509.ExtKeyUsageServerAuth); err != nil {
				t.Errorf("verify as server: %v", err)
			}
			if err := verify(c, ca, x509.ExtKeyUsageClientAuth); err == nil {
				t.Error("serving certificate verified as a client certificate")
			}
			for _, h := range tt.hosts {
				if err := c.VerifyHostname(h); err != nil {
					t.Errorf("VerifyHostname(%q): %v", h, err)
				}
			}
			if err := c.VerifyHostname("example.com"); err == nil {
				t.Error("certificate is valid for a host it was not issued for")
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	tests := []struct {
		name    string
		keyPEM  []byte
		wantKey bool
	}{
		{name: "cert and key", keyPEM: []byte("key"), wantKey: true},
		{name: "cert only", keyPEM: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nested")
			certPath, keyPath, err := WriteFiles(dir, "x", []byte("cert"), tt.keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			assertFile(t, certPath, "cert", 0o644)
			if !tt.wantKey {
				if keyPath != "" {
					t.Errorf("keyPath = %q, want none", keyPath)
				}
				return
			}
			// The key must not be readable by anyone but its owner.
			assertFile(t, keyPath, "key", 0o600)
		})
	}
}

func assertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s = %q, want %q", path, got, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), mode)
	}
}

func mustParse(t *testing.T, certPEM, keyPEM []byte) *x509.Certificate {
	t.Helper()
	// X509KeyPair also checks that the key belongs to the certificate.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key do not form a pair: %v", err)
	}
	c, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(c *x509.Certificate, ca *CA, usage x509.ExtKeyUsage) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func isNil(err error) bool { return err == nil }

func isInvalid(reason x509.InvalidReason) func(error) bool {
	return func(err error) bool {
		var invalid x509.CertificateInvalidError
		return errors.As(err, &invalid) && invalid.Reason == reason
	}
}
