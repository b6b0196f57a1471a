package oidcflow

import (
	"context"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
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
		return Tokens{}, fmt.Errorf("waiting for the device sign-in at %s: %w", c.cfg.Issuer, err)
	}
	return c.tokensFrom(ctx, p, tok, "")
}
