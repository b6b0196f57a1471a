package authn

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"

	"github.com/kip-proxy/kip/internal/rig/pki"
)

// cloningCA hands out a fresh copy of its bundle on every call, as kip's
// signer CA does.
type cloningCA struct {
	dynamiccertificates.CAContentProvider
}

func (c cloningCA) CurrentCABundleContent() []byte {
	return bytes.Clone(c.CAContentProvider.CurrentCABundleContent())
}

// BenchmarkAuthenticateCertificate authenticates requests as kip serve
// wires its authenticator: kip's signer first, then the client CAs as a
// union. Every request of a connection carries the same *tls.ConnectionState,
// as Go's HTTP/1.1 and HTTP/2 servers hand it to each request.
func BenchmarkAuthenticateCertificate(b *testing.B) {
	clientCA, err := mustBenchCA("client-ca")
	if err != nil {
		b.Fatal(err)
	}
	signerCA, err := mustBenchCA("signer-ca")
	if err != nil {
		b.Fatal(err)
	}
	clientCAs := UnionOf(clientCA.provider)
	signer := cloningCA{signerCA.provider}
	withSigner, err := New(Config{
		ClientCA:           clientCAs,
		SignerCA:           signer,
		SignerCertificates: x509request.NewDynamic(signer.VerifyOptions, x509request.CommonNameUserConversion),
	})
	if err != nil {
		b.Fatal(err)
	}
	clientCAOnly, err := New(Config{ClientCA: clientCAs})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		a    authenticator.Request
		ca   benchCA
	}{
		{"client CA, no signer", clientCAOnly, clientCA},
		{"client CA, signer first", withSigner, clientCA},
		{"signer", withSigner, signerCA},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps/c", nil)
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.ca.leaf}}
			b.ReportAllocs()
			for b.Loop() {
				resp, ok, err := tc.a.AuthenticateRequest(req)
				if !ok || err != nil || resp.User.GetName() != "alice" {
					b.Fatalf("refused: %v", err)
				}
			}
		})
	}
}

type benchCA struct {
	provider dynamiccertificates.CAContentProvider
	leaf     *x509.Certificate
}

func mustBenchCA(name string) (benchCA, error) {
	ca, err := pkiNewCA(name)
	if err != nil {
		return benchCA{}, err
	}
	certPEM, _, err := ca.IssueClient(pkiClient("alice", time.Now().Add(time.Hour)))
	if err != nil {
		return benchCA{}, err
	}
	leaf, err := pkiParse(certPEM)
	if err != nil {
		return benchCA{}, err
	}
	p, err := dynamiccertificates.NewStaticCAContent(name, ca.CertPEM)
	return benchCA{provider: p, leaf: leaf}, err
}

func pkiNewCA(name string) (*pki.CA, error) { return pki.NewCA(name, 24*time.Hour) }

func pkiClient(cn string, notAfter time.Time) pki.ClientCertRequest {
	return pki.ClientCertRequest{CommonName: cn, NotAfter: notAfter}
}

func pkiParse(certPEM []byte) (*x509.Certificate, error) { return pki.ParseCertPEM(certPEM) }
