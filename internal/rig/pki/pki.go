package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// clockSkew backdates NotBefore so a certificate is usable at once even when
// the verifying process's clock runs slightly behind ours.
const clockSkew = time.Minute

// defaultClientValidity is how long a client certificate lives when the
// request leaves NotAfter zero.
const defaultClientValidity = 24 * time.Hour

// CA is a certificate authority that can sign client and serving certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// NewCA creates a self-signed CA valid from a minute ago for validity.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("CA %q: validity must be positive, got %v", commonName, validity)
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing CA %q: %w", commonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key, CertPEM: encodeCert(der)}, nil
}

// KeyPEM returns the CA's private key in PEM form, for handing the CA to a
// process that signs with it (kip's own signer in `kip dev`, for instance).
func (ca *CA) KeyPEM() ([]byte, error) {
	return keyutil.MarshalPrivateKeyToPEM(ca.Key)
}

// ClientCertRequest describes a client certificate. Kubernetes maps
// CommonName to the user name and Organizations to groups.
type ClientCertRequest struct {
	CommonName    string
	Organizations []string
	// NotBefore defaults to one minute ago. NotAfter defaults to 24 hours
	// after NotBefore. Set them to build expired or not-yet-valid certificates.
	NotBefore, NotAfter time.Time
	// ExtKeyUsage defaults to ClientAuth when nil. A non-nil empty slice
	// leaves the extension out, which verifiers read as "any usage".
	ExtKeyUsage []x509.ExtKeyUsage
}

// IssueClient signs a client certificate for req with a fresh key.
func (ca *CA) IssueClient(req ClientCertRequest) (certPEM, keyPEM []byte, err error) {
	notBefore := req.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-clockSkew)
	}
	notAfter := req.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.Add(defaultClientValidity)
	}
	if !notAfter.After(notBefore) {
		return nil, nil, fmt.Errorf("client certificate %q: NotAfter %v is not after NotBefore %v",
			req.CommonName, notAfter, notBefore)
	}
	usage := req.ExtKeyUsage
	if usage == nil {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.CommonName, Organization: req.Organizations},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: usage,
	}
	return ca.issue(tmpl)
}

// ClientCertificate is IssueClient's certificate, parsed, for a caller
// that hands it to a verifier and needs no key.
func (ca *CA) ClientCertificate(req ClientCertRequest) (*x509.Certificate, error) {
	certPEM, _, err := ca.IssueClient(req)
	if err != nil {
		return nil, err
	}
	return ParseCertPEM(certPEM)
}

// IssueServing signs a serving certificate for hosts, valid from a minute ago
// for validity. IP hosts become IP SANs, everything else DNS SANs; the first
// host is also the common name.
func (ca *CA) IssueServing(hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("serving certificate: no hosts given")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("serving certificate for %v: validity must be positive, got %v", hosts, validity)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		NotBefore:   now.Add(-clockSkew),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// issue fills in the serial number, signs tmpl with a fresh key and returns
// both in PEM form.
func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// WriteFiles writes certPEM to dir/name.crt and keyPEM to dir/name.key,
// creating dir if needed. The key file is readable by its owner only. An
// empty keyPEM writes the certificate alone, which is how a CA bundle is
// handed out.
func WriteFiles(dir, name string, certPEM, keyPEM []byte) (certPath, keyPath string, err error) {
	// cert.WriteCert and keyutil.WriteKey create dir as needed.
	certPath = filepath.Join(dir, name+".crt")
	if err := cert.WriteCert(certPath, certPEM); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", certPath, err)
	}
	if len(keyPEM) == 0 {
		return certPath, "", nil
	}
	keyPath = filepath.Join(dir, name+".key")
	if err := keyutil.WriteKey(keyPath, keyPEM); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", keyPath, err)
	}
	return certPath, keyPath, nil
}

// ParseCertPEM returns the first certificate in data, for tests that inspect
// what they were issued.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := cert.ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return key, nil
}

// newSerial returns a random 128-bit serial number; RFC 5280 asks for unique
// serials per CA, and randomness gives that without keeping state.
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: cert.CertificateBlockType, Bytes: der})
}
