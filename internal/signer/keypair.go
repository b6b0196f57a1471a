package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// clockSkew backdates NotBefore so a fresh certificate is usable at once by
// a verifier whose clock runs slightly behind kip's.
const clockSkew = time.Minute

// Backdate is how far before its issue a certificate kip signs says it
// became valid: the revocation list reads its issue time back from it.
const Backdate = clockSkew

// signingCA is a CA kip can sign with.
type signingCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// parseSigningCA checks that certPEM and keyPEM form a usable signer: the
// key matches the first certificate, which is a CA allowed to sign
// certificates and not yet expired.
func parseSigningCA(certPEM, keyPEM []byte, now time.Time) (*signingCA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the signer CA certificate and key do not form a pair: %w", err)
	}
	cert := pair.Leaf
	if cert == nil {
		if cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing the signer CA certificate: %w", err)
		}
	}
	if err := checkCA(cert, now); err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the signer CA key of type %T cannot sign", pair.PrivateKey)
	}
	return &signingCA{cert: cert, key: key, certPEM: encodeCertPEM(cert.Raw), keyPEM: keyPEM}, nil
}

// checkCA refuses certificates that cannot act as kip's signer, so a
// mistaken file or Secret is caught at load rather than at the first login.
func checkCA(cert *x509.Certificate, now time.Time) error {
	name := cert.Subject.CommonName
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("the certificate %q is not a CA (basic constraints CA:TRUE missing)", name)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("the CA %q may not sign certificates (key usage keyCertSign missing)", name)
	}
	if !now.Before(cert.NotAfter) {
		return fmt.Errorf("the CA %q expired at %v", name, cert.NotAfter.UTC())
	}
	return nil
}

// generateSigningCA makes a fresh CA: ECDSA P-256, valid from now for
// validity. MaxPathLen 0 states in the certificate what kip relies on:
// it signs leaves only.
func generateSigningCA(now time.Time, validity time.Duration) (*signingCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the signer CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kip signer CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing the signer CA: %w", err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the signer CA key: %w", err)
	}
	return parseSigningCA(encodeCertPEM(der), keyPEM, now)
}

// randomSerial returns a random 128-bit serial: RFC 5280 wants serials
// unique per CA, and randomness gives that across replicas without state.
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return serial, nil
}

func encodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: der})
}

// parseOneCertPEM parses a PEM block holding exactly one certificate.
func parseOneCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := certutil.ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, errors.New("want exactly one certificate")
	}
	return certs[0], nil
}
