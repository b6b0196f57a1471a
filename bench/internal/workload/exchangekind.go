package workload

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// exchangePath is where kip serves the credential exchange.
var exchangePath = "/apis/" + loginv1alpha1.SchemeGroupVersion.String() + "/" + loginv1alpha1.Resource

// maxAnswer bounds what is read of one answer; a credential is a few KiB.
const maxAnswer = 1 << 20

// exchangeKind is one kind of exchange: a token, with or without a CSR,
// sent over a connection of its own.
type exchangeKind struct {
	target *load.Target
	// source is "oidc" or "webhook"; user is whom the token names.
	source, user string
	// key is the CSR's key; nil when kip is to generate one.
	key *ecdsa.PrivateKey
	// body is the TokenCredentialRequest, encoded once: the client's own
	// cost is not what is measured.
	body   []byte
	signer *x509.CertPool
	// issuedTo is the user of the certificate check saw.
	issuedTo string
	// posts counts the exchanges sent.
	posts atomic.Int64
}

func newExchangeKind(t *load.Target, source, token, user string, csr bool, signerCAPEM []byte) (*exchangeKind, error) {
	k := &exchangeKind{target: t, source: source, user: user, signer: x509.NewCertPool()}
	if !k.signer.AppendCertsFromPEM(signerCAPEM) {
		return nil, errors.New("the signer CA is not PEM")
	}
	spec := loginv1alpha1.TokenCredentialRequestSpec{Token: token}
	var err error
	if csr {
		if k.key, spec.CertificateSigningRequest, err = harness.NewCSR(); err != nil {
			return nil, err
		}
	}
	k.body, err = json.Marshal(&loginv1alpha1.TokenCredentialRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: loginv1alpha1.SchemeGroupVersion.String(), Kind: "TokenCredentialRequest"},
		Spec:     spec,
	})
	return k, err
}

// post sends one exchange and returns the credential. An answer without
// one, or without a private key exactly when kip was to generate it, is an
// error.
func (k *exchangeKind) post(ctx context.Context) (*loginv1alpha1.ClusterCredential, error) {
	k.posts.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.target.URL+exchangePath, bytes.NewReader(k.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := k.target.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("POST %s: %s: %.300s", exchangePath, resp.Status, data)
	}
	return credentialIn(data, k.key == nil)
}

// credentialIn decodes an answer and insists on a credential.
func credentialIn(data []byte, wantKey bool) (*loginv1alpha1.ClusterCredential, error) {
	var answer loginv1alpha1.TokenCredentialRequest
	if err := json.Unmarshal(data, &answer); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	cred := answer.Status.Credential
	switch {
	case cred == nil:
		msg := "none"
		if answer.Status.Message != nil {
			msg = *answer.Status.Message
		}
		return nil, fmt.Errorf("no credential issued (message: %s)", msg)
	case cred.ClientCertificateData == "":
		return nil, errors.New("the credential has no certificate")
	case wantKey != (cred.ClientKeyData != ""):
		return nil, fmt.Errorf("the credential has a private key: %t, want %t", cred.ClientKeyData != "", wantKey)
	}
	return cred, nil
}

// check exchanges once and verifies the certificate as a client of kip
// would rely on it: it chains to the signer CA for client authentication,
// names the token's user, expires when the answer says, and belongs to the
// CSR's key or to the key kip sent back.
func (k *exchangeKind) check(ctx context.Context) error {
	cred, err := k.post(ctx)
	if err != nil {
		return err
	}
	cert, err := pki.ParseCertPEM([]byte(cred.ClientCertificateData))
	if err != nil {
		return err
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: k.signer, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the certificate does not chain to kip's signer CA: %w", err)
	}
	if cert.Subject.CommonName != k.user {
		return fmt.Errorf("the certificate is for %q, want %q", cert.Subject.CommonName, k.user)
	}
	if d := cert.NotAfter.Sub(cred.ExpirationTimestamp.Time); d < -time.Second || d > time.Second {
		return fmt.Errorf("the certificate expires at %s, the answer says %s", cert.NotAfter, cred.ExpirationTimestamp)
	}
	if err := k.checkKey(cert, cred); err != nil {
		return err
	}
	k.issuedTo = cert.Subject.CommonName
	return nil
}

func (k *exchangeKind) checkKey(cert *x509.Certificate, cred *loginv1alpha1.ClusterCredential) error {
	if k.key == nil {
		if _, err := tls.X509KeyPair([]byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)); err != nil {
			return fmt.Errorf("the generated key does not fit the certificate: %w", err)
		}
		return nil
	}
	if !k.key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("the certificate is not for the CSR's key")
	}
	return nil
}

// result labels what the load run measured for this kind.
func (k *exchangeKind) result(l results.Load) results.Exchange {
	return results.Exchange{Token: k.source, GeneratedKey: k.key == nil, User: k.issuedTo, Load: l}
}
