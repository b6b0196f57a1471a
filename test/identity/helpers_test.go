package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/hydra"
)

// person is someone at the identity provider.
func person(name string, groups ...string) hydra.Person {
	if groups == nil {
		groups = []string{}
	}
	return hydra.Person{Subject: name + "-sub", Claims: map[string]any{
		"email": name + "@example.com", "name": name, "groups": groups,
	}}
}

// idToken signs in as who with client through Hydra, as a browser would,
// and returns the ID token.
func idToken(t *testing.T, client string, who hydra.Person) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	redirect := "http://127.0.0.1:" + strconv.Itoa(callbackPort(t)) + "/callback"
	raw, err := env.idp.Hydra.IDToken(ctx, client, redirect, who, "email", "groups", "profile")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// kipConfig reaches the cluster through kip with no credential yet.
func kipConfig() *rest.Config {
	return &rest.Config{Host: env.stack.KipURL, TLSClientConfig: rest.TLSClientConfig{CAData: env.stack.KipCAPEM}}
}

func bearerConfig(token string) *rest.Config {
	c := kipConfig()
	c.BearerToken = token
	return c
}

func certConfig(certPEM, keyPEM []byte) *rest.Config {
	c := kipConfig()
	c.CertData, c.KeyData = certPEM, keyPEM
	return c
}

// exchangeClient posts TokenCredentialRequests to kip with client-go's
// REST client and the importable API types.
func exchangeClient(t *testing.T, kip *rest.Config) rest.Interface {
	t.Helper()
	rc, err := harness.ExchangeClient(kip)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// exchange trades token (and csrPEM, when set) for a credential. It
// returns the answer, or the error kip gave.
func exchange(t *testing.T, token string, csrPEM []byte) (*loginv1alpha1.TokenCredentialRequest, error) {
	t.Helper()
	return exchangeAt(t, kipConfig(), token, csrPEM)
}

// exchangeAt is exchange at the kip that kip describes.
func exchangeAt(t *testing.T, kip *rest.Config, token string, csrPEM []byte) (*loginv1alpha1.TokenCredentialRequest, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return harness.Exchange(ctx, exchangeClient(t, kip), token, csrPEM)
}

// mustExchange is exchange that insists on a credential.
func mustExchange(t *testing.T, token string, csrPEM []byte) *loginv1alpha1.ClusterCredential {
	t.Helper()
	return mustExchangeAt(t, kipConfig(), token, csrPEM)
}

// mustExchangeAt is mustExchange at the kip that kip describes.
func mustExchangeAt(t *testing.T, kip *rest.Config, token string, csrPEM []byte) *loginv1alpha1.ClusterCredential {
	t.Helper()
	out, err := exchangeAt(t, kip, token, csrPEM)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if out.Status.Credential == nil {
		t.Fatalf("exchange gave no credential: %v", ptrString(out.Status.Message))
	}
	return out.Status.Credential
}

func ptrString(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// whoami asks kip, through cfg, who the upstream thinks the caller is.
func whoami(t *testing.T, cfg *rest.Config) (*authenticationv1.UserInfo, error) {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &r.Status.UserInfo, nil
}

// newCSR makes a key and a PEM certificate signing request for it.
func newCSR(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, csr, err := harness.NewCSR()
	if err != nil {
		t.Fatal(err)
	}
	return key, csr
}

func keyPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	out, err := harness.KeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func parseCert(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatalf("no PEM certificate in %q", certPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upstreamSaw reports whether the upstream's audit log names user as the
// user of any request, directly or impersonated.
func upstreamSaw(t *testing.T, user string) bool {
	t.Helper()
	data, err := os.ReadFile(env.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), `"username":"`+user+`"`)
}

// statusCode is the HTTP status of a client-go error, or 0.
func statusCode(err error) int {
	type statusError interface{ Status() metav1.Status }
	if se, ok := err.(statusError); ok {
		return int(se.Status().Code)
	}
	return 0
}
