package hydra_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/hydra"
)

// testState is the OAuth2 state of sign-ins that do not check it; Hydra
// refuses states shorter than 8 characters.
const testState = "kip-test-state"

// alice is the person the tests sign in as.
var alice = hydra.Person{
	Subject: "alice",
	Claims: map[string]any{
		"email":          "alice@example.com",
		"email_verified": true,
		"name":           "Alice Liddell",
		"groups":         []string{"developers", "on-call"},
	},
}

// TestHydra starts a real Hydra and signs in to it the way `kip login` will:
// authorization code with PKCE, then refresh, then across a key rotation.
// The first run builds Hydra, which takes minutes; run with -timeout 20m.
func TestHydra(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts Ory Hydra")
	}
	h := startHydra(t)
	ctx := oidc.ClientContext(t.Context(), h.HTTPClient())
	provider, err := oidc.NewProvider(ctx, h.IssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	conf := publicClient(t, h, provider, "http://127.0.0.1:1/callback")

	var first *oauth2.Token
	t.Run("authorization code with PKCE", func(t *testing.T) {
		first = signIn(t, h, conf, alice)
		idToken := verifyIDToken(t, ctx, provider, conf.ClientID, first)
		assertClaims(t, idToken, alice)
		if first.RefreshToken == "" {
			t.Error("no refresh token, though offline_access was asked for")
		}
	})

	t.Run("IDToken", func(t *testing.T) {
		raw, err := h.IDToken(t.Context(), conf.ClientID, conf.RedirectURL, alice, "email", "groups", "profile")
		if err != nil {
			t.Fatal(err)
		}
		idToken, err := provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		assertClaims(t, idToken, alice)
	})

	t.Run("refresh", func(t *testing.T) {
		if first == nil {
			t.Skip("no token to refresh")
		}
		refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		if refreshed.AccessToken == first.AccessToken {
			t.Error("refresh returned the same access token")
		}
		assertClaims(t, verifyIDToken(t, ctx, provider, conf.ClientID, refreshed), alice)
	})

	t.Run("signing key rotation", func(t *testing.T) {
		testKeyRotation(t, ctx, h, conf, first)
	})

	t.Run("callback server receives the code", func(t *testing.T) {
		testVisitCallback(t, ctx, h, provider)
	})

	t.Run("refused sign-ins", func(t *testing.T) {
		testRefusedSignIns(t, h, conf)
	})

	t.Run("no device flow in v2.3.0", func(t *testing.T) {
		testNoDeviceFlow(t, ctx, h)
	})
}

func startHydra(t *testing.T) *hydra.Hydra {
	t.Helper()
	log := testLog{t}
	bins, err := binaries.Ensure(t.Context(), binaries.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hydra.Start(t.Context(), hydra.Options{Binary: bins.Hydra, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// publicClient registers a public client, as `kip login` is, and returns
// its OAuth2 configuration.
func publicClient(t *testing.T, h *hydra.Hydra, provider *oidc.Provider, redirectURI string) *oauth2.Config {
	t.Helper()
	c, err := h.Admin.CreateClient(t.Context(), hydra.Client{RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Secret != "" {
		t.Fatalf("CreateClient() = %+v, want an ID and no secret for a public client", c)
	}
	endpoint := provider.Endpoint()
	// A public client authenticates with its client_id alone.
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{
		ClientID:    c.ID,
		Endpoint:    endpoint,
		RedirectURL: redirectURI,
		Scopes:      []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "email", "groups", "profile"},
	}
}

// signIn runs the authorization-code flow with PKCE as who and returns the
// tokens.
func signIn(t *testing.T, h *hydra.Hydra, conf *oauth2.Config, who hydra.Person) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier() // any unguessable string will do
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	callback, err := h.SignIn(t.Context(), authURL, who)
	if err != nil {
		t.Fatal(err)
	}
	if got := callback.Query().Get("state"); got != state {
		t.Fatalf("callback state = %q, want %q", got, state)
	}
	ctx := oidc.ClientContext(t.Context(), h.HTTPClient())
	tok, err := conf.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verifyIDToken(t *testing.T, ctx context.Context, provider *oidc.Provider, clientID string, tok *oauth2.Token) *oidc.IDToken {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("token response has no id_token")
	}
	idToken, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	return idToken
}

func assertClaims(t *testing.T, idToken *oidc.IDToken, who hydra.Person) {
	t.Helper()
	var claims struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idToken.Subject != who.Subject {
		t.Errorf("sub = %q, want %q", idToken.Subject, who.Subject)
	}
	if claims.Email != who.Claims["email"] || claims.Name != who.Claims["name"] {
		t.Errorf("email, name = %q, %q; want %v, %v", claims.Email, claims.Name, who.Claims["email"], who.Claims["name"])
	}
	if want := who.Claims["groups"].([]string); !slices.Equal(claims.Groups, want) {
		t.Errorf("groups = %q, want %q", claims.Groups, want)
	}
}

// testKeyRotation checks what kip's OIDC authenticator relies on: after a
// rotation new ID tokens carry the new kid and verify against a freshly
// fetched JWKS, and tokens signed before it still verify, since Hydra keeps
// the old public key in the JWKS.
func testKeyRotation(t *testing.T, ctx context.Context, h *hydra.Hydra, conf *oauth2.Config, before *oauth2.Token) {
	if before == nil {
		t.Skip("no token from before the rotation")
	}
	oldKID := keyID(t, before)
	newKID, err := h.Admin.RotateSigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID {
		t.Fatalf("rotation kept kid %s", oldKID)
	}
	after := signIn(t, h, conf, alice)
	if got := keyID(t, after); got != newKID {
		t.Errorf("ID token after rotation has kid %s, want the new %s", got, newKID)
	}

	// A new provider fetches the JWKS afresh, as a verifier meeting an
	// unknown kid does.
	fresh, err := oidc.NewProvider(ctx, h.IssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	verifyIDToken(t, ctx, fresh, conf.ClientID, after)
	verifyIDToken(t, ctx, fresh, conf.ClientID, before)
	kids := jwksKeyIDs(t, h)
	if !slices.Contains(kids, oldKID) || !slices.Contains(kids, newKID) {
		t.Errorf("JWKS has kids %v, want both the old %s and the new %s", kids, oldKID, newKID)
	}
}

// testVisitCallback signs in for a client whose redirect_uri is a loopback
// server, as `kip login`'s is, and checks that the server got the code.
func testVisitCallback(t *testing.T, ctx context.Context, h *hydra.Hydra, provider *oidc.Provider) {
	codes := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codes <- r.URL.Query().Get("code")
		_, _ = w.Write([]byte("signed in; you may close this window"))
	}))
	t.Cleanup(srv.Close)

	conf := publicClient(t, h, provider, srv.URL+"/callback")
	verifier := oauth2.GenerateVerifier()
	callback, err := h.SignIn(ctx, conf.AuthCodeURL(testState, oauth2.S256ChallengeOption(verifier)), alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := hydra.VisitCallback(ctx, callback); err != nil {
		t.Fatal(err)
	}
	code := <-codes
	if code == "" || code != callback.Query().Get("code") {
		t.Fatalf("callback server got code %q, SignIn returned %s", code, callback)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

// testRefusedSignIns checks that sign-ins Hydra must refuse fail, rather
// than hand out a code.
func testRefusedSignIns(t *testing.T, h *hydra.Hydra, conf *oauth2.Config) {
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name    string
		authURL string
		who     hydra.Person
		wantErr string
	}{
		{
			// A public client without PKCE would let whoever intercepts
			// the code redeem it.
			name:    "public client without PKCE",
			authURL: conf.AuthCodeURL(testState),
			who:     alice,
			wantErr: "invalid_request",
		},
		{
			name:    "unregistered redirect_uri",
			authURL: withParam(conf.AuthCodeURL(testState, oauth2.S256ChallengeOption(verifier)), "redirect_uri", "http://127.0.0.1:2/elsewhere"),
			who:     alice,
			wantErr: "invalid_request",
		},
		{
			name:    "unknown client",
			authURL: withParam(conf.AuthCodeURL(testState, oauth2.S256ChallengeOption(verifier)), "client_id", "nobody"),
			who:     alice,
			wantErr: "invalid_client",
		},
		{
			name:    "scope the client may not ask for",
			authURL: withParam(conf.AuthCodeURL(testState, oauth2.S256ChallengeOption(verifier)), "scope", "openid admin"),
			who:     alice,
			wantErr: "invalid_scope",
		},
		{
			name:    "no subject",
			authURL: conf.AuthCodeURL(testState, oauth2.S256ChallengeOption(verifier)),
			who:     hydra.Person{},
			wantErr: "no subject",
		},
		{
			name:    "authorization URL elsewhere",
			authURL: "http://127.0.0.1:1/oauth2/auth",
			who:     alice,
			wantErr: "not on Hydra's public endpoint",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			callback, err := h.SignIn(t.Context(), tt.authURL, tt.who)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SignIn() = %v, %v; want an error containing %q", callback, err, tt.wantErr)
			}
		})
	}
}

// testNoDeviceFlow pins down that Hydra v2.3.0 has no device authorization
// grant (RFC 8628). A Hydra bump that brings one fails here, as a reminder
// to give this package and kip's device login their tests.
func testNoDeviceFlow(t *testing.T, ctx context.Context, h *hydra.Hydra) {
	var discovery map[string]any
	getJSON(t, ctx, h, h.IssuerURL+"/.well-known/openid-configuration", &discovery)
	if endpoint, ok := discovery["device_authorization_endpoint"]; ok {
		t.Errorf("discovery names device_authorization_endpoint %v; Hydra has a device flow now", endpoint)
	}
	resp, err := h.HTTPClient().PostForm(h.IssuerURL+"/oauth2/token", url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {"anything"},
		"client_id":   {"anyone"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var answer struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	if resp.StatusCode == http.StatusOK {
		t.Errorf("token endpoint accepted a device_code grant")
	}
	t.Logf("device_code grant at the token endpoint: %s, error %q", resp.Status, answer.Error)
}

func getJSON(t *testing.T, ctx context.Context, h *hydra.Hydra, url string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func jwksKeyIDs(t *testing.T, h *hydra.Hydra) []string {
	t.Helper()
	var jwks struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	getJSON(t, t.Context(), h, h.IssuerURL+"/.well-known/jwks.json", &jwks)
	var kids []string
	for _, k := range jwks.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// keyID reads the kid from the ID token's header, which go-oidc does not
// expose.
func keyID(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	header, _, _ := strings.Cut(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("ID token header: %v", err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatalf("ID token header: %v", err)
	}
	return h.KID
}

func withParam(rawURL, key, value string) string {
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
