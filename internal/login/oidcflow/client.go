package oidcflow

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Flow is how the user signs in.
type Flow string

const (
	// FlowBrowser is the authorization code flow with PKCE; the browser
	// returns to a listener on this machine.
	FlowBrowser Flow = "browser"
	// FlowDevice is the device authorization grant: the user signs in on any
	// device with a URL and a code.
	FlowDevice Flow = "device"
)

// Config says where and how to sign in.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes are requested besides "openid", which is always requested.
	Scopes []string
	// HTTPClient talks to the identity provider; nil means
	// http.DefaultClient.
	HTTPClient *http.Client

	Flow Flow
	// ListenAddress is the callback listener of the browser flow; empty
	// means 127.0.0.1 on a random port.
	ListenAddress string
	// SkipBrowser prints the sign-in URL instead of opening a browser.
	SkipBrowser bool
	// BrowserCommand opens the browser, with the URL as its one argument;
	// empty means $BROWSER, then the system's opener.
	BrowserCommand string
	// OpenBrowser replaces BrowserCommand; tests drive the flow with it.
	OpenBrowser func(ctx context.Context, url string) error

	// Stderr is where the user reads instructions.
	Stderr io.Writer
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
}

// Tokens is the result of a sign-in or a refresh.
type Tokens struct {
	IDToken      string
	RefreshToken string
	// Expiry is the ID token's exp claim.
	Expiry time.Time
}

// Client signs in to one identity provider. It contacts the provider only
// when a method needs it, so a run that finds everything in kip's cache
// makes no request at all.
type Client struct {
	cfg      Config
	provider *oidc.Provider
}

// New returns a client; it does no I/O.
func New(cfg Config) *Client {
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Flow == "" {
		cfg.Flow = FlowBrowser
	}
	return &Client{cfg: cfg}
}

// Login signs the user in with the configured flow.
func (c *Client) Login(ctx context.Context) (Tokens, error) {
	ctx = c.httpContext(ctx)
	p, err := c.discover(ctx)
	if err != nil {
		return Tokens{}, err
	}
	switch c.cfg.Flow {
	case FlowDevice:
		return c.deviceLogin(ctx, p)
	case FlowBrowser:
		return c.browserLogin(ctx, p)
	}
	return Tokens{}, fmt.Errorf("unknown sign-in flow %q", c.cfg.Flow)
}

// Refresh trades a refresh token for a new ID token. The provider may
// rotate the refresh token; the one to keep is in the result.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	ctx = c.httpContext(ctx)
	p, err := c.discover(ctx)
	if err != nil {
		return Tokens{}, err
	}
	// A token without an access token is never valid, so TokenSource goes
	// straight to the refresh grant.
	tok, err := c.oauth2Config(p, "").TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return Tokens{}, fmt.Errorf("refreshing the sign-in at %s: %w", c.cfg.Issuer, err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return c.tokensFrom(ctx, p, tok, "")
}

// httpContext carries the provider's HTTP client to go-oidc and x/oauth2.
func (c *Client) httpContext(ctx context.Context) context.Context {
	if c.cfg.HTTPClient == nil {
		return ctx
	}
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := oidc.NewProvider(ctx, c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OIDC provider %s (check --issuer and --issuer-ca-file): %w", c.cfg.Issuer, err)
	}
	c.provider = p
	return p, nil
}

func (c *Client) oauth2Config(p *oidc.Provider, redirectURL string) *oauth2.Config {
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range c.cfg.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	endpoint := p.Endpoint()
	endpoint.AuthStyle = authStyle(p, c.cfg.ClientSecret)
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     endpoint,
		RedirectURL:  redirectURL,
		Scopes:       scopes,
	}
}

// authStyle says how kip authenticates as the client at the token
// endpoint. Left to guess, x/oauth2 sends Basic first and, when that is
// refused, the body. A public client has no secret, so its guess would
// cost a refused request on every refresh and device poll, which providers
// log as failed client authentication and some count towards locking the
// client: it sends its client_id in the body (RFC 6749 §2.3.1, as the
// revocation does). A confidential client uses the one method the
// provider offers, and the guess when it offers both or does not say,
// since the client's registration, which kip cannot see, decides.
func authStyle(p *oidc.Provider, secret string) oauth2.AuthStyle {
	if secret == "" {
		return oauth2.AuthStyleInParams
	}
	var doc struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&doc); err != nil {
		return oauth2.AuthStyleAutoDetect
	}
	basic, post := slices.Contains(doc.Methods, "client_secret_basic"), slices.Contains(doc.Methods, "client_secret_post")
	switch {
	case post && !basic:
		return oauth2.AuthStyleInParams
	case basic && !post:
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleAutoDetect
}

// tokensFrom verifies the ID token in a token response. nonce is checked
// when not empty; refresh and device responses carry none of kip's.
func (c *Client) tokensFrom(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, nonce string) (Tokens, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Tokens{}, fmt.Errorf("the OIDC provider %s returned no ID token (is the openid scope allowed for client %s?)", c.cfg.Issuer, c.cfg.ClientID)
	}
	v := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return Tokens{}, fmt.Errorf("verifying the ID token from %s: %w", c.cfg.Issuer, err)
	}
	if nonce != "" && idt.Nonce != nonce {
		return Tokens{}, errors.New("the ID token does not carry the nonce of this sign-in; the sign-in was not completed")
	}
	return Tokens{IDToken: raw, RefreshToken: tok.RefreshToken, Expiry: idt.Expiry}, nil
}

// randomString returns 256 random bits for state and nonce.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
