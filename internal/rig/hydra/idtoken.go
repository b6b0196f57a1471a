package hydra

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// IDToken signs in as who through the authorization-code flow with PKCE, as
// `kip login oidc` does with a browser, for the client clientID registered
// with redirectURL, and returns the raw ID token. It asks for openid and
// scopes. Tests and benchmarks that need a real ID token for kip share it,
// so that they all sign in the one way a user does.
func (h *Hydra) IDToken(ctx context.Context, clientID, redirectURL string, who Person, scopes ...string) (string, error) {
	ctx = oidc.ClientContext(ctx, h.HTTPClient())
	provider, err := oidc.NewProvider(ctx, h.IssuerURL)
	if err != nil {
		return "", err
	}
	conf := oauth2.Config{
		ClientID: clientID, Endpoint: provider.Endpoint(), RedirectURL: redirectURL,
		Scopes: append([]string{oidc.ScopeOpenID}, scopes...),
	}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	callback, err := h.SignIn(ctx, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(state)), who)
	if err != nil {
		return "", err
	}
	if callback.Query().Get("state") != state {
		return "", fmt.Errorf("signing in at Hydra: callback %s lost the state", callback.Redacted())
	}
	tok, err := conf.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("redeeming the authorization code at Hydra: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", errors.New("hydra's token response has no id_token")
	}
	return raw, nil
}
