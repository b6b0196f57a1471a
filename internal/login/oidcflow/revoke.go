package oidcflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Token type hints of RFC 7009 §2.1.
const (
	HintRefreshToken = "refresh_token"
	HintAccessToken  = "access_token"
)

// ErrNoRevocationEndpoint means the provider's discovery document names no
// revocation_endpoint: a token it issued stays valid there until it expires.
var ErrNoRevocationEndpoint = errors.New("the OIDC provider has no revocation endpoint")

// revokeTimeout bounds one revocation, discovery included, so that logout never hangs on a
// provider that accepts the connection and then says nothing.
const revokeTimeout = 30 * time.Second

// maxErrorBody bounds what is read of a provider's error answer.
const maxErrorBody = 64 << 10

// RevocationError is a provider's refusal to revoke a token.
type RevocationError struct {
	Endpoint string
	Status   string
	// Code and Description are RFC 6749 §5.2's error and
	// error_description, when the provider sent them.
	Code        string
	Description string
}

func (e *RevocationError) Error() string {
	msg := fmt.Sprintf("the revocation endpoint %s answered %s", e.Endpoint, e.Status)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// RevocationEndpoint returns the revocation_endpoint of the provider's
// discovery document, or ErrNoRevocationEndpoint.
func (c *Client) RevocationEndpoint(ctx context.Context) (string, error) {
	p, err := c.discover(c.httpContext(ctx))
	if err != nil {
		return "", err
	}
	var claims struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	if err := p.Claims(&claims); err != nil {
		return "", fmt.Errorf("reading the discovery document of %s: %w", c.cfg.Issuer, err)
	}
	if claims.RevocationEndpoint == "" {
		return "", fmt.Errorf("%w (%s)", ErrNoRevocationEndpoint, c.cfg.Issuer)
	}
	if err := CheckURL(claims.RevocationEndpoint, true); err != nil {
		return "", fmt.Errorf("the revocation endpoint of %s: %w", c.cfg.Issuer, err)
	}
	return claims.RevocationEndpoint, nil
}

// Revoke asks the provider to revoke token (RFC 7009), hint being
// HintRefreshToken or HintAccessToken. The client authenticates as the
// sign-in does: a public client names itself with client_id in the body,
// one with a secret uses HTTP basic authentication (RFC 6749 §2.3.1).
// An unknown or already revoked token is a success: RFC 7009 §2.2 has the
// provider answer 200 for it too.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	ctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	endpoint, err := c.RevocationEndpoint(ctx)
	if err != nil {
		return err
	}
	req, err := c.revocationRequest(ctx, endpoint, token, hint)
	if err != nil {
		return err
	}
	resp, err := c.revocationHTTPClient().Do(req)
	if err != nil {
		return fmt.Errorf("revoking the %s at %s: %w", strings.ReplaceAll(hint, "_", " "), endpoint, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return revocationError(endpoint, resp)
}

func (c *Client) revocationRequest(ctx context.Context, endpoint, token, hint string) (*http.Request, error) {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if c.cfg.ClientSecret == "" {
		form.Set("client_id", c.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("the revocation endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.cfg.ClientSecret != "" {
		// RFC 6749 §2.3.1 form-encodes both before the basic encoding, as
		// x/oauth2 does for the token endpoint.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	return req, nil
}

// revocationHTTPClient is the provider's client (its CAs), except that it
// follows no redirect: Go would send the token again to wherever a 307 or
// 308 points.
func (c *Client) revocationHTTPClient() *http.Client {
	hc := http.DefaultClient
	if c.cfg.HTTPClient != nil {
		hc = c.cfg.HTTPClient
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &noRedirect
}

// revocationError reads an OAuth 2.0 error answer, if it is one.
func revocationError(endpoint string, resp *http.Response) error {
	e := &RevocationError{Endpoint: endpoint, Status: resp.Status}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var oauthErr struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &oauthErr) == nil {
		e.Code, e.Description = printable(oauthErr.Error), printable(oauthErr.ErrorDescription)
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		if after := resp.Header.Get("Retry-After"); after != "" {
			e.Description = strings.TrimPrefix(e.Description+"; retry after "+printable(after), "; ")
		}
	}
	return e
}

// printable keeps what a provider says to one short line of text, so an
// answer cannot rewrite the user's terminal.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// CheckURL accepts an absolute https URL, and http only on a loopback host
// when allowLoopbackHTTP (local test providers): a token must not cross a
// network in clear text.
func CheckURL(raw string, allowLoopbackHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowLoopbackHTTP && IsLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q must be an https URL", raw)
}

// IsLoopbackHost reports whether host names the loopback interface.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
