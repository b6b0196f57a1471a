package logintest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientID is the client the fake provider knows.
const ClientID = "kip-test"

// UserCode is the device flow's user code.
const UserCode = "ABCD-EFGH"

// Counts are what the provider was asked.
type Counts struct {
	Requests, Discoveries, Authorizations, CodeExchanges, Refreshes, DeviceAuths, DevicePolls, Revocations int32
}

// Provider is a fake OIDC provider.
type Provider struct {
	Server *httptest.Server
	Issuer string
	// IDTokenTTL is the lifetime of the ID tokens it issues.
	IDTokenTTL time.Duration
	// Email and Groups go into every ID token.
	Email  string
	Groups []string

	key    *rsa.PrivateKey
	signer jose.Signer

	mu                                                                                        sync.Mutex
	codes                                                                                     map[string]authRequest
	refresh                                                                                   map[string]bool
	devices                                                                                   map[string]int
	requests, discoveries, authorizations, codeExchanges, refreshes, deviceAuths, devicePolls atomic.Int32
	revocations                                                                               atomic.Int32
	noRevocation                                                                              atomic.Bool
}

type authRequest struct {
	challenge, nonce, redirectURI, scope string
}

// NewProvider starts a provider; it stops when the test ends.
func NewProvider(t testing.TB) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		IDTokenTTL: time.Hour, Email: "alice@example.com", Groups: []string{"devs"},
		key: key, signer: signer,
		codes: map[string]authRequest{}, refresh: map[string]bool{}, devices: map[string]int{},
	}
	p.Server = httptest.NewTLSServer(p.handler())
	p.Issuer = p.Server.URL
	t.Cleanup(p.Server.Close)
	return p
}

// CAPEM is the PEM CA that the provider's serving certificate chains to.
func (p *Provider) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Server.Certificate().Raw})
}

// Counts returns the counters.
func (p *Provider) Counts() Counts {
	return Counts{
		Requests: p.requests.Load(), Discoveries: p.discoveries.Load(), Authorizations: p.authorizations.Load(),
		CodeExchanges: p.codeExchanges.Load(), Refreshes: p.refreshes.Load(),
		DeviceAuths: p.deviceAuths.Load(), DevicePolls: p.devicePolls.Load(), Revocations: p.revocations.Load(),
	}
}

// Browser acts as the user's browser: it follows the sign-in URL through
// the provider's redirect to kip login's callback and expects the success
// page.
func (p *Provider) Browser(ctx context.Context, signInURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signInURL, nil)
	if err != nil {
		return err
	}
	resp, err := p.Server.Client().Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the callback answered %s", resp.Status)
	}
	return nil
}

// Valid says whether raw is an unexpired ID token this provider signed.
func (p *Provider) Valid(raw string) bool {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return false
	}
	var c jwt.Claims
	if err := tok.Claims(&p.key.PublicKey, &c); err != nil {
		return false
	}
	return c.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, AnyAudience: jwt.Audience{ClientID}, Time: time.Now()}, 0) == nil
}

// IDToken signs an ID token with the given claims changes applied.
func (p *Provider) IDToken(t testing.TB, issuer, audience, nonce string, ttl time.Duration) string {
	t.Helper()
	s, err := p.idToken(issuer, audience, nonce, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (p *Provider) idToken(issuer, audience, nonce string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := struct {
		jwt.Claims
		Nonce  string   `json:"nonce,omitempty"`
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	}{
		Claims: jwt.Claims{
			Issuer: issuer, Subject: "alice", Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(ttl)),
		},
		Nonce: nonce, Email: p.Email, Groups: p.Groups,
	}
	return jwt.Signed(p.signer).Claims(claims).Serialize()
}

func (p *Provider) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /device/code", p.deviceCode)
	mux.HandleFunc("POST /revoke", p.revoke)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		mux.ServeHTTP(w, r)
	})
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	p.discoveries.Add(1)
	doc := map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/jwks",
		"device_authorization_endpoint":         p.Issuer + "/device/code",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	if !p.noRevocation.Load() {
		doc["revocation_endpoint"] = p.Issuer + "/revoke"
	}
	writeJSON(w, http.StatusOK, doc)
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

// authorize signs the user in at once and redirects back with a code.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	p.authorizations.Add(1)
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != ClientID, q.Get("response_type") != "code":
		http.Error(w, "bad client or response type", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		http.Error(w, "scope openid is required", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1":
		http.Error(w, "redirect_uri must be a loopback http URL", http.StatusBadRequest)
		return
	}
	code := random()
	p.mu.Lock()
	p.codes[code] = authRequest{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri"), scope: q.Get("scope")}
	p.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		p.codeGrant(w, r)
	case "refresh_token":
		p.refreshGrant(w, r)
	case "urn:ietf:params:oauth:grant-type:device_code":
		p.deviceGrant(w, r)
	default:
		oauthError(w, "unsupported_grant_type")
	}
}

// codeGrant redeems a code once, and only with the PKCE verifier whose
// challenge came with it.
func (p *Provider) codeGrant(w http.ResponseWriter, r *http.Request) {
	p.codeExchanges.Add(1)
	p.mu.Lock()
	req, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok, r.PostForm.Get("redirect_uri") != req.redirectURI:
		oauthError(w, "invalid_grant")
	case base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
		oauthError(w, "invalid_grant")
	default:
		p.issue(w, req.nonce)
	}
}

func (p *Provider) refreshGrant(w http.ResponseWriter, r *http.Request) {
	p.refreshes.Add(1)
	rt := r.PostForm.Get("refresh_token")
	p.mu.Lock()
	ok := p.refresh[rt]
	delete(p.refresh, rt) // refresh tokens rotate
	p.mu.Unlock()
	if !ok {
		oauthError(w, "invalid_grant")
		return
	}
	p.issue(w, "")
}

// deviceGrant answers authorization_pending once per device code, then
// tokens, as if the user signed in between two polls.
func (p *Provider) deviceGrant(w http.ResponseWriter, r *http.Request) {
	p.devicePolls.Add(1)
	dc := r.PostForm.Get("device_code")
	p.mu.Lock()
	polls, ok := p.devices[dc]
	p.devices[dc] = polls + 1
	p.mu.Unlock()
	switch {
	case !ok:
		oauthError(w, "invalid_grant")
	case polls == 0:
		oauthError(w, "authorization_pending")
	default:
		p.issue(w, "")
	}
}

// DisableRevocation leaves revocation_endpoint out of the discovery
// document from now on, as providers without RFC 7009 do.
func (p *Provider) DisableRevocation() { p.noRevocation.Store(true) }

// revoke is RFC 7009's endpoint for the public client: a refresh token
// it names is forgotten, and an unknown token is a success too.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	p.revocations.Add(1)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
		oauthError(w, "invalid_request")
		return
	}
	if r.PostForm.Get("client_id") != ClientID {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	delete(p.refresh, r.PostForm.Get("token"))
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (p *Provider) deviceCode(w http.ResponseWriter, r *http.Request) {
	p.deviceAuths.Add(1)
	_ = r.ParseForm()
	if r.PostForm.Get("client_id") != ClientID {
		oauthError(w, "invalid_client")
		return
	}
	dc := random()
	p.mu.Lock()
	p.devices[dc] = 0
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": dc, "user_code": UserCode,
		"verification_uri":          p.Issuer + "/device",
		"verification_uri_complete": p.Issuer + "/device?user_code=" + UserCode,
		"expires_in":                60, "interval": 1,
	})
}

func (p *Provider) issue(w http.ResponseWriter, nonce string) {
	idt, err := p.idToken(p.Issuer, ClientID, nonce, p.IDTokenTTL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rt := random()
	p.mu.Lock()
	p.refresh[rt] = true
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": random(), "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": rt, "id_token": idt,
	})
}

func oauthError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
