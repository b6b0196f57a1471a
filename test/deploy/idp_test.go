package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/rig/tokenwebhook"
)

// audience is the audience kip accepts in the test issuer's tokens.
const audience = "kip"

// issuer is a minimal OIDC issuer on loopback TLS: discovery, a JWKS, and
// ID tokens the test signs itself. The chart's AuthenticationConfiguration
// points kip at it.
type issuer struct {
	*httptest.Server
	caPEM []byte
	key   *ecdsa.PrivateKey
}

func startIssuer(t *testing.T) *issuer {
	t.Helper()
	ca := pki.NewCAForTest(t, "kip chart test issuer CA", time.Hour)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	i := &issuer{caPEM: ca.CertPEM, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	i.Server = startTLS(t, ca, mux)
	return i
}

// token is an ID token for subject, valid for ten minutes.
func (i *issuer) token(t *testing.T, subject string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: i.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: i.URL, Subject: subject, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// webhook is the rig's token webhook vouching for one user.
type webhook struct {
	*tokenwebhook.Webhook
	// kubeconfig is what an operator puts in the chart's tokenWebhook.kubeconfig.
	kubeconfig string
}

func startWebhook(t *testing.T, token string, user authenticationv1.UserInfo) *webhook {
	t.Helper()
	hook, err := tokenwebhook.Start(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hook.Close)
	hook.Vouch(token, user)
	data, err := hook.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	return &webhook{Webhook: hook, kubeconfig: string(data)}
}

// startTLS serves h on loopback with a certificate from ca.
func startTLS(t *testing.T, ca *pki.CA, h http.Handler) *httptest.Server {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
