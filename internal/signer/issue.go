package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
)

const (
	minRSABits = 2048
	// maxRSABits matches what Go's TLS stack accepts from a peer; a larger
	// key could never be used to log in.
	maxRSABits = 8192
)

// Issue signs a client certificate for u's identity and the caller's public
// key, valid for ttl but never past the signing CA's own expiry. It returns
// the certificate in PEM form and when it expires. The private key never
// comes near kip.
func (c *CA) Issue(u user.Info, pub crypto.PublicKey, ttl time.Duration) (certPEM []byte, notAfter time.Time, err error) {
	if ttl <= 0 || ttl > c.opts.MaxCertificateTTL {
		return nil, time.Time{}, fmt.Errorf("a certificate lifetime of %v is not allowed: it must be positive and at most %v", ttl, c.opts.MaxCertificateTTL)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, time.Time{}, err
	}
	id, err := certificateUser(u)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cannot issue a certificate: %w", err)
	}
	signer := c.state.Load().signing
	now := c.opts.Clock.Now()
	if !now.Before(signer.cert.NotAfter) {
		return nil, time.Time{}, fmt.Errorf("kip's signer CA expired at %v; rotate it", signer.cert.NotAfter.UTC())
	}
	// UTCTime holds whole seconds: truncating here returns exactly what
	// the certificate says.
	notAfter = now.Add(ttl).Truncate(time.Second)
	if signer.cert.NotAfter.Before(notAfter) {
		notAfter = signer.cert.NotAfter
	}
	tmpl, err := leafTemplate(id, now.Add(-clockSkew), notAfter)
	if err != nil {
		return nil, time.Time{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, pub, signer.key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("signing the certificate for %q: %w", id.Name, err)
	}
	return encodeCertPEM(der), notAfter, nil
}

// leafTemplate is a client-only leaf carrying id.
func leafTemplate(id *user.DefaultInfo, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	subject, err := subjectDER(id)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		RawSubject:   subject,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		// Stated explicitly: a kip leaf can never sign anything.
		BasicConstraintsValid: true,
	}
	if len(id.Extra) > 0 {
		der, err := encodeExtras(id.Extra)
		if err != nil {
			return nil, err
		}
		// Non-critical: verifiers other than kip may ignore it.
		tmpl.ExtraExtensions = []pkix.Extension{{Id: extrasOID, Value: der}}
	}
	return tmpl, nil
}

// checkPublicKey accepts the key types and sizes kip is willing to vouch
// for; anything weaker would make the certificate the weak link.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			return errors.New("no public key was given")
		}
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA keys must use curve P-256 or P-384, not %s", curveName(k))
		}
		if _, err := k.ECDH(); err != nil {
			return fmt.Errorf("the ECDSA public key is invalid: %w", err)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("the Ed25519 public key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return errors.New("the RSA public key is empty")
		}
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("RSA keys must have %d to %d bits, this one has %d", minRSABits, maxRSABits, bits)
		}
	case nil:
		return errors.New("no public key was given")
	default:
		return fmt.Errorf("public keys of type %T are not accepted: use ECDSA P-256 or P-384, Ed25519 or RSA of at least %d bits", pub, minRSABits)
	}
	return nil
}

func curveName(k *ecdsa.PublicKey) string {
	if k.Curve == nil {
		return "none"
	}
	return k.Curve.Params().Name
}
