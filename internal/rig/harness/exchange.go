package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// ExchangeConfig is cfg set up for kip's credential exchange with the
// importable API types, as a client outside kip would use them.
func ExchangeConfig(cfg *rest.Config) *rest.Config {
	scheme := runtime.NewScheme()
	// AddToScheme only registers two Go types; it cannot fail.
	_ = loginv1alpha1.AddToScheme(scheme)
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &loginv1alpha1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	return c
}

// ExchangeClient posts TokenCredentialRequests with client-go's REST
// client to the kip cfg describes.
func ExchangeClient(cfg *rest.Config) (rest.Interface, error) {
	return rest.RESTClientFor(ExchangeConfig(cfg))
}

// Exchange trades token, and csrPEM when set, for a credential. It returns
// kip's answer, or the error kip gave.
func Exchange(ctx context.Context, rc rest.Interface, token string, csrPEM []byte) (*loginv1alpha1.TokenCredentialRequest, error) {
	out := &loginv1alpha1.TokenCredentialRequest{}
	err := rc.Post().Resource(loginv1alpha1.Resource).
		Body(&loginv1alpha1.TokenCredentialRequest{Spec: loginv1alpha1.TokenCredentialRequestSpec{Token: token, CertificateSigningRequest: csrPEM}}).
		Do(ctx).Into(out)
	return out, err
}

// NewCSR makes a P-256 key and a PEM certificate signing request for it, as
// `kip login` does; the subject is left empty, since kip takes the
// identity from the token.
func NewCSR() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// KeyPEM is key as a PKCS #8 PEM block, as a kubeconfig holds it.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
