package tokenauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
)

// fakeIssuer is an OIDC issuer on loopback TLS: discovery and keys, and
// tokens signed with its current key.
type fakeIssuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
	kid string
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{}
	f.rotate(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: f.kid, Algorithm: "ES256", Use: "sig"}}})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) rotate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.key, f.kid = key, fmt.Sprintf("key-%d", time.Now().UnixNano())
}

func (f *fakeIssuer) caPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
}

// sign returns an ID token for claims, on top of valid defaults.
func (f *fakeIssuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	all := map[string]any{
		"iss": f.srv.URL, "aud": "kip", "sub": "alice-sub", "email": "alice@example.com",
		"groups": []string{"devs"}, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}
	for k, v := range claims {
		if v == nil {
			delete(all, k)
		} else {
			all[k] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", f.kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(all)
	sig, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func authConfig(issuer *fakeIssuer, usernamePrefix string) string {
	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ") }
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences: [kip]
    certificateAuthority: |
      %s
  claimMappings:
    username:
      claim: email
      prefix: %q
    groups:
      claim: groups
      prefix: ""
    uid:
      claim: sub
    extra:
    - key: example.com/issuer
      valueExpression: claims.iss
`, issuer.srv.URL, indent(issuer.caPEM()), usernamePrefix)
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newReadyVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return v.HealthCheck() == nil, nil
	}); err != nil {
		t.Fatalf("issuer never became ready: %v", v.HealthCheck())
	}
	return v
}

func TestJWT(t *testing.T) {
	issuer := newFakeIssuer(t)
	other := newFakeIssuer(t)
	path := filepath.Join(t.TempDir(), "auth.yaml")
	writeConfig(t, path, authConfig(issuer, ""))
	v := newReadyVerifier(t, Config{AuthenticationConfigFile: path})

	b64 := base64.RawURLEncoding.EncodeToString
	valid := issuer.sign(t, nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64([]byte(`{"iss":"`+issuer.srv.URL+`","aud":"kip","sub":"x","email":"mallory@example.com","exp":9999999999}`)) + "." + parts[2]
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + strings.Split(tampered, ".")[1] + "."

	tests := []struct {
		name      string
		token     string
		wantUser  string
		wantError bool // false with no user: not recognised, left to others
	}{
		{name: "valid", token: valid, wantUser: "alice@example.com"},
		{name: "expired", token: issuer.sign(t, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), wantError: true},
		{name: "wrong audience", token: issuer.sign(t, map[string]any{"aud": "someone-else"}), wantError: true},
		{name: "tampered payload", token: tampered, wantError: true},
		{name: "alg none", token: algNone, wantError: true},
		{name: "signed by another key, same issuer", token: func() string {
			tok := other.sign(t, map[string]any{"iss": issuer.srv.URL})
			return tok
		}(), wantError: true},
		{name: "system:masters group", token: issuer.sign(t, map[string]any{"groups": []string{"devs", "system:masters"}}), wantError: true},
		{name: "system:node user", token: issuer.sign(t, map[string]any{"email": "system:node:x"}), wantError: true},
		{name: "unknown issuer", token: other.sign(t, nil)},
		{name: "not a JWT", token: "opaque-webhook-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, ok, err := v.AuthenticateToken(context.Background(), tt.token)
			switch {
			case tt.wantUser != "":
				if err != nil || !ok || resp.User.GetName() != tt.wantUser {
					t.Fatalf("got %v, %v, %v; want user %s", resp, ok, err, tt.wantUser)
				}
			case tt.wantError:
				if err == nil || ok {
					t.Fatalf("got ok=%v err=%v; want a refusal", ok, err)
				}
			default:
				if err != nil || ok {
					t.Fatalf("got ok=%v err=%v; want the token left to other verifiers", ok, err)
				}
			}
		})
	}

	resp, _, _ := v.AuthenticateToken(context.Background(), valid)
	u := resp.User
	if u.GetUID() != "alice-sub" || strings.Join(u.GetGroups(), ",") != "devs" || u.GetExtra()["example.com/issuer"][0] != issuer.srv.URL {
		t.Errorf("claim mappings: uid %q groups %q extra %v", u.GetUID(), u.GetGroups(), u.GetExtra())
	}
}

func TestJWTKeyRotationAtTheIssuer(t *testing.T) {
	issuer := newFakeIssuer(t)
	path := filepath.Join(t.TempDir(), "auth.yaml")
	writeConfig(t, path, authConfig(issuer, ""))
	v := newReadyVerifier(t, Config{AuthenticationConfigFile: path})
	issuer.rotate(t)
	if _, ok, err := v.AuthenticateToken(context.Background(), issuer.sign(t, nil)); !ok || err != nil {
		t.Fatalf("a token signed with the issuer's new key: ok=%v err=%v; want the keys refetched and the token accepted", ok, err)
	}
}

func TestJWTReload(t *testing.T) {
	issuer := newFakeIssuer(t)
	path := filepath.Join(t.TempDir(), "auth.yaml")
	writeConfig(t, path, authConfig(issuer, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := newJWTAuthenticator(ctx, path, 10*time.Second, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	name := func() string {
		t.Helper()
		resp, ok, err := j.AuthenticateToken(ctx, issuer.sign(t, nil))
		if err != nil || !ok {
			t.Fatalf("token refused: %v", err)
		}
		return resp.User.GetName()
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return j.HealthCheck() == nil, nil
	}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name        string
		content     string
		wantChanged bool
		wantErr     string
		wantName    string
	}{
		{name: "unchanged file", content: authConfig(issuer, ""), wantName: "alice@example.com"},
		{name: "new prefix", content: authConfig(issuer, "idp:"), wantChanged: true, wantName: "idp:alice@example.com"},
		{name: "unknown field keeps the last good", content: authConfig(issuer, "x:") + "surprise: true\n", wantErr: "unknown field", wantName: "idp:alice@example.com"},
		{name: "anonymous keeps the last good", content: authConfig(issuer, "x:") + "anonymous:\n  enabled: true\n", wantErr: "kip never accepts anonymous", wantName: "idp:alice@example.com"},
		{name: "garbage keeps the last good", content: "{", wantErr: "authentication configuration", wantName: "idp:alice@example.com"},
		{name: "empty keeps the last good", content: "", wantErr: "empty", wantName: "idp:alice@example.com"},
		{name: "back to no prefix", content: authConfig(issuer, ""), wantChanged: true, wantName: "alice@example.com"},
	}
	for _, s := range steps {
		writeConfig(t, path, s.content)
		changed, err := j.reload(ctx)
		if changed != s.wantChanged || (err == nil) != (s.wantErr == "") || (err != nil && !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: reload() = %v, %v; want changed=%v, error containing %q", s.name, changed, err, s.wantChanged, s.wantErr)
		}
		if got := name(); got != s.wantName {
			t.Fatalf("%s: user %q, want %q", s.name, got, s.wantName)
		}
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	issuer := newFakeIssuer(t)
	dir := t.TempDir()
	tests := []struct {
		name, content, wantErr string
	}{
		{name: "no issuer", content: "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n", wantErr: "no issuer"},
		{name: "http issuer", content: strings.Replace(authConfig(issuer, ""), "https://", "http://", 1), wantErr: "https"},
		{name: "wrong kind", content: "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\n", wantErr: "AuthenticationConfiguration"},
		{name: "bad CEL", content: strings.Replace(authConfig(issuer, ""), "claims.iss", "claims.(", 1), wantErr: "valueExpression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			writeConfig(t, path, tt.content)
			_, err := New(context.Background(), Config{AuthenticationConfigFile: path})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

var _ authenticator.Token = (*Verifier)(nil)

// TestJWTSeveralIssuers: each issuer's tokens are mapped by its own
// section, and one issuer's refusal does not stop the other's tokens.
func TestJWTSeveralIssuers(t *testing.T) {
	first, second := newFakeIssuer(t), newFakeIssuer(t)
	jwtSection := func(config string) string {
		_, section, _ := strings.Cut(config, "jwt:\n")
		return section
	}
	path := filepath.Join(t.TempDir(), "auth.yaml")
	writeConfig(t, path, authConfig(first, "first:")+jwtSection(authConfig(second, "second:")))
	v := newReadyVerifier(t, Config{AuthenticationConfigFile: path})
	for _, tt := range []struct {
		issuer *fakeIssuer
		want   string
	}{{first, "first:alice@example.com"}, {second, "second:alice@example.com"}} {
		resp, ok, err := v.AuthenticateToken(context.Background(), tt.issuer.sign(t, nil))
		if err != nil || !ok || resp.User.GetName() != tt.want {
			t.Errorf("got %v, %v, %v; want %s", resp, ok, err, tt.want)
		}
	}
	if _, ok, err := v.AuthenticateToken(context.Background(), second.sign(t, map[string]any{"aud": "other"})); ok || err == nil {
		t.Errorf("the second issuer's token for another audience: ok=%v err=%v, want refused", ok, err)
	}
}
