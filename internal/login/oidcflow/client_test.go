package oidcflow_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// TestTokenRequestAuthentication: a public client's refresh is one request
// to the token endpoint with its client_id in the body, never an empty
// Basic secret the provider refuses first. A confidential client uses the
// one method the provider offers, and otherwise tries Basic, then the body.
func TestTokenRequestAuthentication(t *testing.T) {
	refused := oauthError(http.StatusUnauthorized, `{"error":"invalid_client"}`)
	for _, tc := range []struct {
		name, secret string
		methods      []string
		want         []string // per request: "basic" or "body"
	}{
		{name: "public client", want: []string{"body"}},
		{name: "public client, provider lists basic", methods: []string{"client_secret_basic", "none"}, want: []string{"body"}},
		{name: "confidential client, basic alone", secret: "s3cret", methods: []string{"client_secret_basic"}, want: []string{"basic"}},
		{name: "confidential client, post alone", secret: "s3cret", methods: []string{"client_secret_post"}, want: []string{"body"}},
		{name: "confidential client, both offered", secret: "s3cret", methods: []string{"client_secret_post", "client_secret_basic"}, want: []string{"basic", "body"}},
		{name: "confidential client, methods not listed", secret: "s3cret", want: []string{"basic", "body"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRevocationProvider(t, atRevoke, refused)
			p.authMethods = tc.methods
			c := oidcflow.New(oidcflow.Config{Issuer: p.server.URL, ClientID: "kip-cli", ClientSecret: tc.secret, HTTPClient: p.server.Client()})
			if _, err := c.Refresh(context.Background(), "a-refresh-token"); err == nil {
				t.Fatal("a refused refresh was not an error")
			}
			got, forms := p.requests()
			var styles []string
			for i, r := range got {
				styles = append(styles, clientAuthentication(t, r, forms[i], tc.secret))
			}
			if !slices.Equal(styles, tc.want) {
				t.Fatalf("token requests authenticated by %v, want %v", styles, tc.want)
			}
		})
	}
}

// clientAuthentication says how a token request authenticated the client,
// and fails the test if it carried the client in both places or not at all.
func clientAuthentication(t *testing.T, r *http.Request, form url.Values, secret string) string {
	t.Helper()
	if form.Get("refresh_token") != "a-refresh-token" {
		t.Errorf("body %v", form)
	}
	user, pass, basic := r.BasicAuth()
	switch {
	case basic && user == "kip-cli" && pass == secret && !form.Has("client_secret"):
		return "basic"
	case !basic && form.Get("client_id") == "kip-cli" && form.Get("client_secret") == secret:
		return "body"
	}
	t.Errorf("Authorization %q, body %v", r.Header.Get("Authorization"), form)
	return "neither"
}
