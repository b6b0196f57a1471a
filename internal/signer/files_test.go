package signer

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/keyutil"
)

// selfSigned makes a pair that is not a usable signer in some way.
func selfSigned(t *testing.T, tmpl *x509.Certificate) *signingCA {
	t.Helper()
	key := clientKey(t)
	tmpl.SerialNumber = big.NewInt(1)
	tmpl.Subject = pkix.Name{CommonName: "not a signer"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := keyutil.MarshalPrivateKeyToPEM(key)
	return &signingCA{certPEM: encodeCertPEM(der), keyPEM: keyPEM}
}

func TestNewFromFilesRefuses(t *testing.T) {
	now := time.Now()
	good := mustSigner(t, now, time.Hour)
	other := mustSigner(t, now, time.Hour)
	tests := []struct {
		name    string
		pair    *signingCA
		wantErr string
	}{
		{"a leaf, not a CA", selfSigned(t, &x509.Certificate{NotBefore: now, NotAfter: now.Add(time.Hour), BasicConstraintsValid: true}), "not a CA"},
		{"a CA without keyCertSign", selfSigned(t, &x509.Certificate{NotBefore: now, NotAfter: now.Add(time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature}), "keyCertSign"},
		{"an expired CA", selfSigned(t, &x509.Certificate{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}), "expired"},
		{"a key that does not match", &signingCA{certPEM: good.certPEM, keyPEM: other.keyPEM}, "private key does not match"},
		{"garbage", &signingCA{certPEM: []byte("nope"), keyPEM: []byte("nope")}, "failed to find"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := writePair(t, t.TempDir(), tt.pair)
			_, err := NewFromFiles(certFile, keyFile, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if _, err := NewFromFiles(filepath.Join(t.TempDir(), "missing.crt"), "missing.key", Options{}); err == nil || !strings.Contains(err.Error(), "--signer-ca-cert-file") {
		t.Fatalf("missing files: %v", err)
	}
}

func TestFileRotationKeepsTheOldCAForItsWindow(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	first := mustSigner(t, clk.Now(), 30*24*time.Hour)
	certFile, keyFile := writePair(t, dir, first)
	ca, err := NewFromFiles(certFile, keyFile, Options{Clock: clk, MaxCertificateTTL: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	listener := &countingListener{}
	ca.AddListener(listener)
	oldCert := issue(t, ca, "alice")
	if err := ca.Rotate(ctx); !errors.Is(err, errRotateFiles) {
		t.Fatalf("Rotate on files: %v", err)
	}

	// A bad pair on disk changes nothing.
	writePair(t, dir, selfSigned(t, &x509.Certificate{NotBefore: clk.Now(), NotAfter: clk.Now().Add(time.Hour), BasicConstraintsValid: true}))
	if err := ca.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !ca.state.Load().signing.cert.Equal(first.cert) || listener.n.Load() != 0 {
		t.Fatal("a pair that is not a CA replaced the signer")
	}

	second := mustSigner(t, clk.Now(), 30*24*time.Hour)
	writePair(t, dir, second)
	if err := ca.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if listener.n.Load() != 1 || !trusts(t, ca, first.cert) || !trusts(t, ca, second.cert) {
		t.Fatalf("after rotation: %d notifications, want both CAs trusted", listener.n.Load())
	}
	newCert := issue(t, ca, "bob")
	if err := newCert.CheckSignatureFrom(second.cert); err != nil {
		t.Fatalf("not signed by the new CA: %v", err)
	}
	for _, c := range []*x509.Certificate{oldCert, newCert} {
		if _, ok, err := authenticate(ca, c); !ok || err != nil {
			t.Fatalf("%s refused during the window: %v", c.Subject.CommonName, err)
		}
	}

	clk.Step(2*time.Hour + propagationGrace)
	if err := ca.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if listener.n.Load() != 2 || trusts(t, ca, first.cert) {
		t.Fatalf("after the window: %d notifications, old CA trusted: %v", listener.n.Load(), trusts(t, ca, first.cert))
	}
	if _, ok, _ := authenticate(ca, oldCert); ok {
		t.Fatal("a certificate of the retired CA was accepted after its window")
	}
	// Refused because its CA is gone, not only because it expired.
	opts, _ := ca.VerifyOptions()
	opts.CurrentTime = oldCert.NotBefore.Add(time.Minute)
	if _, err := oldCert.Verify(opts); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("the retired CA still verifies: %v", err)
	}
}

func TestFileWatchPicksUpNewFiles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	first := mustSigner(t, time.Now(), time.Hour)
	certFile, keyFile := writePair(t, dir, first)
	ca, err := NewFromFiles(certFile, keyFile, Options{})
	if err != nil {
		t.Fatal(err)
	}
	listener := &countingListener{}
	ca.AddListener(listener)
	go ca.Run(ctx, 1)

	second := mustSigner(t, time.Now(), time.Hour)
	// Replace atomically, as a mounted Secret or a careful operator does.
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, second.keyPEM}, {certFile, second.certPEM}} {
		writeFile(t, f.path+".new", f.data)
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return ca.state.Load().signing.cert.Equal(second.cert), nil
	})
	if err != nil {
		t.Fatal("the new files were not picked up")
	}
	if !trusts(t, ca, first.cert) || listener.n.Load() == 0 {
		t.Fatal("the previous CA is not trusted or no listener was told")
	}
}
