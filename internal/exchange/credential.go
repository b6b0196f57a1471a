package exchange

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// authenticationFailed is all a client learns about a token that did not
// work.
const authenticationFailed = "authentication failed"

// issue signs a certificate for pub, or for a key kip generates when the
// request carried no CSR; only then is a private key returned.
func (h *handler) issue(u user.Info, pub crypto.PublicKey) (*loginv1alpha1.ClusterCredential, error) {
	var keyPEM []byte
	if pub == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating a key: %w", err)
		}
		if keyPEM, err = encodeKey(key); err != nil {
			return nil, err
		}
		pub = key.Public()
	}
	certPEM, notAfter, err := h.issuer.Issue(u, pub, h.ttl)
	if err != nil {
		return nil, fmt.Errorf("signing a certificate for %q: %w", u.GetName(), err)
	}
	if len(certPEM) == 0 {
		return nil, errors.New("the issuer returned no certificate")
	}
	return &loginv1alpha1.ClusterCredential{
		ExpirationTimestamp:   metav1.NewTime(notAfter),
		ClientCertificateData: string(certPEM),
		ClientKeyData:         string(keyPEM),
	}, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the generated key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// succeeded and refused turn the request into the answer. The status is
// always kip's own, never one the caller sent, and the token is cleared so
// it is never sent back.
func succeeded(req *loginv1alpha1.TokenCredentialRequest, cred *loginv1alpha1.ClusterCredential) *loginv1alpha1.TokenCredentialRequest {
	return answer(req, loginv1alpha1.TokenCredentialRequestStatus{Credential: cred})
}

func refused(req *loginv1alpha1.TokenCredentialRequest) *loginv1alpha1.TokenCredentialRequest {
	message := authenticationFailed
	return answer(req, loginv1alpha1.TokenCredentialRequestStatus{Message: &message})
}

func answer(req *loginv1alpha1.TokenCredentialRequest, status loginv1alpha1.TokenCredentialRequestStatus) *loginv1alpha1.TokenCredentialRequest {
	out := req.DeepCopy()
	out.TypeMeta = metav1.TypeMeta{APIVersion: requestKind.GroupVersion().String(), Kind: requestKind.Kind}
	out.Spec.Token = ""
	out.Status = status
	return out
}
