package exchange

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
)

// KeyAndCSR is a fresh private key and a certificate signing request for it.
type KeyAndCSR struct {
	// KeyPEM is the ECDSA P-256 private key ("EC PRIVATE KEY").
	KeyPEM []byte
	// CSRPEM is the PKCS#10 request signed with that key.
	CSRPEM []byte
}

// NewKeyAndCSR generates an ECDSA P-256 key and a CSR for it. The subject is
// a placeholder: kip takes the identity from the token, not the CSR.
func NewKeyAndCSR() (KeyAndCSR, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyAndCSR{}, fmt.Errorf("generating a private key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "kip-login"},
	}, key)
	if err != nil {
		return KeyAndCSR{}, fmt.Errorf("creating a certificate signing request: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return KeyAndCSR{}, fmt.Errorf("encoding the private key: %w", err)
	}
	return KeyAndCSR{
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		CSRPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
	}, nil
}
