package exchange

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// RSA keys outside these bounds are refused: too weak below, and above
// only a way to make kip spend time verifying and signing.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

var (
	tokenPath = field.NewPath("spec", "token")
	csrPath   = field.NewPath("spec", "certificateSigningRequest")
)

// validate checks the spec before any token is sent to an identity
// provider, and returns the CSR's public key, or nil when kip is to
// generate the key.
func validate(req *loginv1alpha1.TokenCredentialRequest) (crypto.PublicKey, *apierrors.StatusError) {
	var errs field.ErrorList
	if req.Spec.Token == "" {
		errs = append(errs, field.Required(tokenPath, "a token from your identity provider is required"))
	}
	var pub crypto.PublicKey
	if len(req.Spec.CertificateSigningRequest) > 0 {
		var err error
		if pub, err = parseCSR(req.Spec.CertificateSigningRequest); err != nil {
			// The CSR is not repeated back: the caller has it.
			errs = append(errs, field.Invalid(csrPath, field.OmitValueType{}, err.Error()))
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(requestKind.GroupKind(), req.Name, errs)
	}
	return pub, nil
}

// parseCSR returns the public key of a CSR whose signature proves that
// its sender holds the private key. Its subject and extensions are
// ignored: the identity comes from the token.
func parseCSR(data []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("must be a PEM block of type CERTIFICATE REQUEST")
	}
	// pem.Decode skips text before the block; refuse it, and anything
	// after, so that the request holds exactly one thing.
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) || len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("must hold exactly one PEM block and nothing else")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("is not a valid PKCS#10 certificate signing request: %w", err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("is not signed by the key it contains, so it does not prove you hold that key: %w", err)
	}
	return csr.PublicKey, nil
}

func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("has an ECDSA key on curve %s; use P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("has a %d-bit RSA key; use %d to %d bits", bits, minRSABits, maxRSABits)
		}
		return nil
	default:
		return fmt.Errorf("has an unsupported key type %T; use ECDSA P-256 or P-384, Ed25519, or RSA of at least %d bits", pub, minRSABits)
	}
}
