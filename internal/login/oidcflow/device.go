package oidcflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// UserCodePrefix starts the line that shows the device flow's user code.
const UserCodePrefix = "Enter the code: "

// deviceLogin runs the device authorization grant: it shows a URL and a
// code, then polls the token endpoint until the user has signed in.
func (c *Client) deviceLogin(ctx context.Context, p *oidc.Provider) (Tokens, error) {
	if p.Endpoint().DeviceAuthURL == "" {
		return Tokens{}, fmt.Errorf("the OIDC provider %s has no device authorization endpoint; use --flow browser", c.cfg.Issuer)
	}
	cfg := c.oauth2Config(p, "")
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return Tokens{}, fmt.Errorf("starting the device sign-in at %s: %w", c.cfg.Issuer, err)
	}
	url := da.VerificationURIComplete
	if url == "" {
		url = da.VerificationURI
	}
	c.presentURL(ctx, url)
	_, _ = fmt.Fprintf(c.cfg.Stderr, "%s%s\n", UserCodePrefix, da.UserCode)
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return Tokens{}, c.deviceError(ctx, err, da.UserCode)
	}
	return c.tokensFrom(ctx, p, tok, "")
}

// deviceError says how a device sign-in ended without tokens in words the
// person can act on: x/oauth2 reports a denial as an OAuth error code and
// an expired code as a context deadline.
func (c *Client) deviceError(ctx context.Context, err error, userCode string) error {
	var re *oauth2.RetrieveError
	errors.As(err, &re)
	switch {
	case re != nil && re.ErrorCode == "access_denied":
		return fmt.Errorf("the sign-in with code %s was denied at %s; no credential was issued", userCode, c.cfg.Issuer)
	case re != nil && re.ErrorCode == "expired_token",
		ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		// Only the code's own deadline ends the wait while ctx is alive.
		return fmt.Errorf("the code %s expired before the sign-in at %s was approved; run the command again for a new code", userCode, c.cfg.Issuer)
	}
	return fmt.Errorf("waiting for the device sign-in at %s: %w", c.cfg.Issuer, err)
}
