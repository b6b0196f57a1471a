package exchange

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestNewKeyAndCSR(t *testing.T) {
	kc, err := NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(kc.KeyPEM)
	cb, _ := pem.Decode(kc.CSRPEM)
	if kb == nil || cb == nil || kb.Type != "EC PRIVATE KEY" || cb.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("unexpected PEM:\n%s\n%s", kc.KeyPEM, kc.CSRPEM)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("the CSR does not prove possession of its key: %v", err)
	}
	if !key.PublicKey.Equal(csr.PublicKey.(*ecdsa.PublicKey)) || key.Curve.Params().Name != "P-256" {
		t.Error("the CSR is not for the generated P-256 key")
	}
}
