package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/hydra"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// The OIDC clients the refusal tests sign in with besides clientID:
// shortLivedClient's ID tokens are accepted but expire after a second;
// otherAudienceClient's are for an audience kip does not accept.
const (
	shortLivedClient    = "kip-short-lived"
	otherAudienceClient = "someone-else"
)

// refusedToken is an ID token kip must not accept, and the user the
// upstream must never see because of it.
type refusedToken struct {
	name, token, user string
	// logs is what kip's log must say about the refusal, if anything.
	logs string
	// unrecognised tokens are offered to the webhook and the upstream's
	// TokenReview; every other refused token ends at kip's OIDC verifier.
	unrecognised bool
}

// refusedTokens builds one token for each way an ID token can be wrong.
func refusedTokens(t *testing.T) []refusedToken {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	var tokens []refusedToken
	add := func(name, user, token, logs string) {
		tokens = append(tokens, refusedToken{name: name, token: token, user: user + "@example.com", logs: logs})
	}

	expired := harness.UniqueName("expired")
	issued := time.Now()
	add("expired", expired, idToken(t, shortLivedClient, person(expired)), "")

	wrongAud := harness.UniqueName("wrong-aud")
	add("wrong audience", wrongAud, idToken(t, otherAudienceClient, person(wrongAud)), "")

	stranger := harness.UniqueName("stranger")
	add("unknown issuer", stranger, selfSignedToken(t, stranger), "")
	tokens[len(tokens)-1].unrecognised = true

	tampered := harness.UniqueName("tampered")
	valid := strings.Split(idToken(t, clientID, person(harness.UniqueName("honest"))), ".")
	claims := decodeClaims(t, valid[1])
	claims["email"], claims["groups"] = tampered+"@example.com", []string{"system:masters"}
	payload := b64(mustJSON(t, claims))
	add("tampered payload", tampered, valid[0]+"."+payload+"."+valid[2], "")
	add("alg none", tampered, b64([]byte(`{"alg":"none","typ":"JWT"}`))+"."+payload+".", "")

	masters := harness.UniqueName("masters")
	add("system:masters group", masters, idToken(t, clientID, person(masters, "devs", "system:masters")),
		`the group \"system:masters\" is in the reserved system: namespace`)
	node := hydra.Person{Subject: harness.UniqueName("node"), Claims: map[string]any{"email": "system:node:x", "groups": []string{}}}
	tokens = append(tokens, refusedToken{name: "system:node username", token: idToken(t, clientID, node), user: "system:node:x",
		logs: `the username \"system:node:x\" is in the reserved system: namespace`})

	// The short-lived token was issued first; make sure it has expired.
	time.Sleep(time.Until(issued.Add(2 * time.Second)))
	return tokens
}

// TestRefusedIDTokens: each bad ID token gets 401 as a bearer token and
// "authentication failed" at the exchange, reaches nothing upstream, and a
// reserved name leaves a log line that says why.
func TestRefusedIDTokens(t *testing.T) {
	logs := captureKlog(t)
	for _, tt := range refusedTokens(t) {
		t.Run(tt.name, func(t *testing.T) {
			reviews := env.webhook.Reviews()
			_, err := whoami(t, bearerConfig(tt.token))
			if !apierrors.IsUnauthorized(err) {
				t.Errorf("as a bearer token: %v, want 401 Unauthorized", err)
			}
			out, err := exchange(t, tt.token, nil)
			if err != nil || out.Status.Credential != nil || ptrString(out.Status.Message) != "authentication failed" {
				t.Errorf("exchange = %+v, %v; want only the message \"authentication failed\"", out.Status, err)
			}
			if upstreamSaw(t, tt.user) {
				t.Errorf("the upstream saw a request as %s", tt.user)
			}
			if offered := env.webhook.Reviews() > reviews; offered != tt.unrecognised {
				t.Errorf("token offered to the webhook: %v, want %v", offered, tt.unrecognised)
			}
			if tt.logs != "" && !strings.Contains(logs.String(), tt.logs) {
				t.Errorf("kip's log does not say %q", tt.logs)
			}
		})
	}
}

// TestRefusedCertificates: an expired certificate from kip's own signer and
// one from a CA kip does not trust both get 401.
func TestRefusedCertificates(t *testing.T) {
	replayed := harness.UniqueName("replayed")
	signer := loadSigner(t)
	expiredCert, expiredKey := signClient(t, signer.Cert, signer.Key, replayed+"@example.com", nil, -2*time.Hour, -time.Hour)

	forged := harness.UniqueName("forged")
	evil, err := pki.NewCA("kip signer CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forgedCert, forgedKey := signClient(t, evil.Cert, evil.Key, forged+"@example.com", []string{"system:masters"}, -time.Minute, time.Hour)

	for _, tt := range []struct {
		name, user string
		cert, key  []byte
	}{
		{"expired kip certificate", replayed + "@example.com", expiredCert, expiredKey},
		{"certificate from an untrusted CA", forged + "@example.com", forgedCert, forgedKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := whoami(t, certConfig(tt.cert, tt.key)); !apierrors.IsUnauthorized(err) {
				t.Errorf("got %v, want 401 Unauthorized", err)
			}
			if upstreamSaw(t, tt.user) {
				t.Errorf("the upstream saw a request as %s", tt.user)
			}
		})
	}
}

// TestKeyRotationAtTheProvider: after Hydra signs with a new key, its
// tokens are accepted once kip has fetched the new key set.
func TestKeyRotationAtTheProvider(t *testing.T) {
	before := idToken(t, clientID, person(harness.UniqueName("before")))
	kid, err := env.idp.Hydra.Admin.RotateSigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	name := harness.UniqueName("after")
	after := idToken(t, clientID, person(name))
	if header := decodeClaims(t, strings.Split(after, ".")[0]); header["kid"] != kid {
		t.Fatalf("the new token is signed with key %v, not the new %s", header["kid"], kid)
	}
	got, err := whoami(t, bearerConfig(after))
	if err != nil {
		t.Fatalf("a token signed with the provider's new key: %v", err)
	}
	checkIdentity(t, got, idpUser(name))
	if _, err := whoami(t, bearerConfig(before)); err != nil {
		t.Errorf("a token signed with the old key, which the provider still publishes: %v", err)
	}
}

// selfSignedToken is a well-formed ID token from an issuer kip does not
// know.
func selfSignedToken(t *testing.T, user string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(mustJSON(t, map[string]any{
		"iss": "https://127.0.0.1:1", "aud": clientID, "sub": user, "email": user + "@example.com",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	token, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func decodeClaims(t *testing.T, segment string) map[string]any {
	t.Helper()
	data, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// captureKlog copies kip's log (it runs in this process) into a buffer for
// the rest of the test.
func captureKlog(t *testing.T) *harness.SyncBuffer {
	t.Helper()
	buf := &harness.SyncBuffer{}
	klog.LogToStderr(false)
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.SetOutput(os.Stderr)
		klog.LogToStderr(true)
	})
	return buf
}

// loadSigner reads kip's signer CA from its files.
func loadSigner(t *testing.T) *pki.CA {
	t.Helper()
	certPEM, err := os.ReadFile(env.idp.SignerCACertFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(env.idp.SignerCAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &pki.CA{Cert: cert, Key: key.(crypto.Signer), CertPEM: certPEM}
}

// signClient signs a client certificate for user and groups with ca,
// valid from now+from to now+to.
func signClient(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, user string, groups []string, from, to time.Duration) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    time.Now().Add(from),
		NotAfter:     time.Now().Add(to),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM(t, key)
}
