package oidcflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// revocationProvider is a discovery document, and a revocation endpoint
// and a token endpoint that record what they were sent.
type revocationProvider struct {
	server *httptest.Server
	mu     sync.Mutex
	got    []*http.Request
	forms  []url.Values
	// authMethods, when set, is the discovery document's
	// token_endpoint_auth_methods_supported.
	authMethods []string
}

// newRevocationProvider serves discovery with the revocation endpoint
// endpoint(issuer) (none when it returns ""), and answers POST /revoke and
// POST /elsewhere with answer.
func newRevocationProvider(t *testing.T, endpoint func(issuer string) string, answer http.HandlerFunc) *revocationProvider {
	p := &revocationProvider{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		doc := map[string]any{
			"issuer": p.server.URL, "authorization_endpoint": p.server.URL + "/authorize",
			"token_endpoint": p.server.URL + "/token", "jwks_uri": p.server.URL + "/jwks",
		}
		if e := endpoint(p.server.URL); e != "" {
			doc["revocation_endpoint"] = e
		}
		if p.authMethods != nil {
			doc["token_endpoint_auth_methods_supported"] = p.authMethods
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	record := func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p.mu.Lock()
		p.got = append(p.got, r)
		p.forms = append(p.forms, r.PostForm)
		p.mu.Unlock()
		answer(w, r)
	}
	mux.HandleFunc("POST /revoke", record)
	mux.HandleFunc("POST /elsewhere", record)
	mux.HandleFunc("POST /token", record)
	p.server = httptest.NewTLSServer(mux)
	t.Cleanup(p.server.Close)
	return p
}

func (p *revocationProvider) requests() ([]*http.Request, []url.Values) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got, p.forms
}

func atRevoke(issuer string) string { return issuer + "/revoke" }

func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func oauthError(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// TestRevokeRequest: the request is RFC 7009's, with the client
// authentication of the sign-in, and every answer but 200 is an error that
// says what the provider said.
func TestRevokeRequest(t *testing.T) {
	tests := []struct {
		name             string
		clientID, secret string
		hint             string
		endpoint         func(string) string
		answer           http.HandlerFunc
		wantForm         url.Values
		wantBasic        [2]string
		wantRequests     int
		wantErr          string
		wantNoEndpoint   bool
	}{
		{
			name: "public client names itself in the body", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: ok, wantRequests: 1,
			wantForm: url.Values{"token": {"rt-1"}, "token_type_hint": {"refresh_token"}, "client_id": {"kip"}},
		},
		{
			name: "client with a secret uses HTTP basic, form-encoded first", clientID: "kip:web", secret: "s&cret:x+y", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: ok, wantRequests: 1,
			wantForm:  url.Values{"token": {"rt-1"}, "token_type_hint": {"refresh_token"}},
			wantBasic: [2]string{"kip%3Aweb", "s%26cret%3Ax%2By"},
		},
		{
			name: "access token hint", clientID: "kip", hint: oidcflow.HintAccessToken,
			endpoint: atRevoke, answer: ok, wantRequests: 1,
			wantForm: url.Values{"token": {"rt-1"}, "token_type_hint": {"access_token"}, "client_id": {"kip"}},
		},
		{
			name: "endpoint with a query keeps it", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: func(i string) string { return i + "/revoke?tenant=a" }, answer: ok, wantRequests: 1,
			wantForm: url.Values{"token": {"rt-1"}, "token_type_hint": {"refresh_token"}, "client_id": {"kip"}, "tenant": {"a"}},
		},
		{
			name: "OAuth error is reported with its code and description", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: oauthError(http.StatusUnauthorized, `{"error":"invalid_client","error_description":"client authentication failed"}`),
			wantRequests: 1, wantErr: "answered 401 Unauthorized: invalid_client: client authentication failed",
		},
		{
			name: "unsupported token type", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: oauthError(http.StatusBadRequest, `{"error":"unsupported_token_type"}`),
			wantRequests: 1, wantErr: "answered 400 Bad Request: unsupported_token_type",
		},
		{
			name: "unavailable says when to retry", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: oauthError(http.StatusServiceUnavailable, `not json`, "Retry-After", "30"),
			wantRequests: 1, wantErr: "answered 503 Service Unavailable: retry after 30",
		},
		{
			name: "server error without a body", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: oauthError(http.StatusInternalServerError, ""),
			wantRequests: 1, wantErr: "answered 500 Internal Server Error",
		},
		{
			name: "a redirect is not followed: the token is sent once, where discovery said", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/revoke" {
					http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
				}
			},
			wantRequests: 1, wantErr: "answered 307 Temporary Redirect",
		},
		{
			name: "terminal escapes in the answer are dropped", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: oauthError(http.StatusBadRequest, `{"error":"invalid_request","error_description":"\u001b[2Jgone\nnext"}`),
			wantRequests: 1, wantErr: "invalid_request: [2Jgonenext",
		},
		{
			name: "a huge answer is read only so far", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: atRevoke, answer: oauthError(http.StatusBadRequest, `{"error":"`+strings.Repeat("x", 1<<20)+`"}`),
			wantRequests: 1, wantErr: "answered 400 Bad Request",
		},
		{
			name: "no revocation endpoint", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: func(string) string { return "" }, answer: ok, wantNoEndpoint: true,
		},
		{
			name: "a clear-text endpoint off loopback gets no token", clientID: "kip", hint: oidcflow.HintRefreshToken,
			endpoint: func(string) string { return "http://idp.example.com/revoke" }, answer: ok,
			wantErr: `"http://idp.example.com/revoke" must be an https URL`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newRevocationProvider(t, tc.endpoint, tc.answer)
			c := oidcflow.New(oidcflow.Config{Issuer: p.server.URL, ClientID: tc.clientID, ClientSecret: tc.secret, HTTPClient: p.server.Client()})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Revoke(ctx, "rt-1", tc.hint)
			switch {
			case tc.wantNoEndpoint:
				if !errors.Is(err, oidcflow.ErrNoRevocationEndpoint) {
					t.Errorf("err = %v, want ErrNoRevocationEndpoint", err)
				}
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if err != nil && len(err.Error()) > 1000 {
				t.Errorf("the error is %d bytes long", len(err.Error()))
			}
			reqs, forms := p.requests()
			if len(reqs) != tc.wantRequests {
				t.Fatalf("%d requests at the revocation endpoint, want %d", len(reqs), tc.wantRequests)
			}
			if tc.wantForm == nil {
				return
			}
			checkRevocationRequest(t, reqs[0], forms[0], tc.wantForm, tc.wantBasic)
		})
	}
}

func checkRevocationRequest(t *testing.T, r *http.Request, form, wantForm url.Values, wantBasic [2]string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	all := url.Values{}
	for k, v := range r.URL.Query() {
		all[k] = v
	}
	for k, v := range form {
		all[k] = v
	}
	if got, want := all.Encode(), wantForm.Encode(); got != want {
		t.Errorf("parameters %s, want %s", got, want)
	}
	user, pass, basic := r.BasicAuth()
	switch {
	case wantBasic == [2]string{} && r.Header.Get("Authorization") != "":
		t.Errorf("a public client sent Authorization %q", r.Header.Get("Authorization"))
	case wantBasic != [2]string{} && (!basic || user != wantBasic[0] || pass != wantBasic[1]):
		t.Errorf("basic authentication %q:%q (%v), want %q:%q", user, pass, basic, wantBasic[0], wantBasic[1])
	}
}

// TestRevokeDiscoveryFailure: a provider that cannot be discovered is an
// error that names it, not a hang.
func TestRevokeDiscoveryFailure(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c := oidcflow.New(oidcflow.Config{Issuer: srv.URL, ClientID: "kip", HTTPClient: srv.Client()})
	err := c.Revoke(context.Background(), "rt", oidcflow.HintRefreshToken)
	if err == nil || !strings.Contains(err.Error(), "discovering the OIDC provider "+srv.URL) {
		t.Errorf("err = %v", err)
	}
}
