package hydra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
)

// maxHops bounds the redirects of one sign-in. A full flow takes five:
// login, back to Hydra, consent, back to Hydra, to the client.
const maxHops = 10

// Person is who SignIn plays: a subject and the claims of its ID token.
type Person struct {
	// Subject becomes the tokens' sub claim.
	Subject string
	// Claims go into the ID token as they are: email, groups, name, and
	// whatever else the caller wants kip to see.
	Claims map[string]any
}

// SignIn plays a person with a browser: it opens authorizeURL (Hydra's
// /oauth2/auth with a client's parameters), signs in as who and consents to
// every scope asked for, answering the login and consent challenges through
// the admin API, and returns the URL Hydra finally redirects to: the
// client's redirect_uri with code and state. It does not visit that URL;
// VisitCallback does, for a client that waits for it.
//
// It follows redirects only within Hydra's public endpoint, so nothing
// outside reaches the person's cookies, and it fails if Hydra redirects to
// the client with an error.
func (h *Hydra) SignIn(ctx context.Context, authorizeURL string, who Person) (callback *url.URL, err error) {
	if who.Subject == "" {
		return nil, errors.New("signing in: the identity has no subject")
	}
	next, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("signing in: parsing the authorization URL: %w", err)
	}
	if !h.isIssuerHost(next) {
		return nil, fmt.Errorf("signing in: %s is not on Hydra's public endpoint %s", next.Redacted(), h.IssuerURL)
	}
	browser, err := h.browser()
	if err != nil {
		return nil, err
	}
	for range maxHops {
		loc, err := redirectFrom(ctx, browser, next)
		if err != nil {
			return nil, fmt.Errorf("signing in as %q: %w", who.Subject, err)
		}
		if next, err = h.step(ctx, loc, who); err != nil {
			return nil, fmt.Errorf("signing in as %q: %w", who.Subject, err)
		}
		if next == nil {
			return loc, nil
		}
	}
	return nil, fmt.Errorf("signing in as %q: more than %d redirects", who.Subject, maxHops)
}

// step decides what to do with the redirect to loc: answer a challenge and
// return Hydra's next URL, follow Hydra's own redirect, or return nil when
// loc is the end of the flow.
func (h *Hydra) step(ctx context.Context, loc *url.URL, who Person) (next *url.URL, err error) {
	q := loc.Query()
	switch {
	case q.Has("login_challenge"):
		return h.answerLogin(ctx, q.Get("login_challenge"), who)
	case q.Has("consent_challenge"):
		return h.answerConsent(ctx, q.Get("consent_challenge"), who)
	case q.Has("error"):
		// Hydra's own error page or the client's redirect_uri with an
		// OAuth2 error: either way the sign-in failed.
		return nil, fmt.Errorf("redirected to %s%s with error %q: %s", loc.Host, loc.Path, q.Get("error"), q.Get("error_description"))
	case h.isIssuerHost(loc):
		return loc, nil
	default:
		return nil, nil
	}
}

func (h *Hydra) answerLogin(ctx context.Context, challenge string, who Person) (*url.URL, error) {
	to, err := h.Admin.AcceptLogin(ctx, challenge, LoginAcceptance{Subject: who.Subject})
	if err != nil {
		return nil, err
	}
	return h.hydraURL(to)
}

// answerConsent grants every scope and audience the client asked for, as a
// person clicking "allow" would.
func (h *Hydra) answerConsent(ctx context.Context, challenge string, who Person) (*url.URL, error) {
	req, err := h.Admin.ConsentRequest(ctx, challenge)
	if err != nil {
		return nil, err
	}
	to, err := h.Admin.AcceptConsent(ctx, challenge, ConsentAcceptance{
		GrantScope:    req.RequestedScope,
		GrantAudience: req.RequestedAudience,
		IDToken:       who.Claims,
	})
	if err != nil {
		return nil, err
	}
	return h.hydraURL(to)
}

// hydraURL parses a redirect_to from the admin API, which must point back
// at Hydra's public endpoint.
func (h *Hydra) hydraURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parsing Hydra's redirect_to: %w", err)
	}
	if !h.isIssuerHost(u) {
		return nil, fmt.Errorf("hydra's redirect_to %s leaves its public endpoint %s", u.Redacted(), h.IssuerURL)
	}
	return u, nil
}

func (h *Hydra) isIssuerHost(u *url.URL) bool {
	issuer, err := url.Parse(h.IssuerURL)
	return err == nil && u.Scheme == issuer.Scheme && u.Host == issuer.Host
}

// browser is an HTTP client with a cookie jar, which carries Hydra's CSRF
// cookies from one hop to the next, and that leaves redirects to SignIn.
func (h *Hydra) browser() (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Transport:     h.transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// redirectFrom GETs u, which must answer with a redirect, and returns its
// target.
func redirectFrom(ctx context.Context, client *http.Client, u *url.URL) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 3 {
		return nil, fmt.Errorf("GET %s%s answered %s instead of a redirect: %s", u.Host, u.Path, resp.Status, truncate(string(body), 500))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("GET %s%s: %w", u.Host, u.Path, err)
	}
	return loc, nil
}

// VisitCallback GETs the callback URL SignIn returned, as the browser would
// have, so that a client listening on loopback (`kip login`'s callback
// server, for one) receives its code. It refuses anything but loopback, and
// fails unless the callback answers 2xx.
func VisitCallback(ctx context.Context, callback *url.URL) error {
	if !isLoopback(callback) {
		return fmt.Errorf("visiting callback %s: not a loopback address", callback.Redacted())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, callback.String(), nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if !isLoopback(req.URL) {
			return fmt.Errorf("not following the redirect to %s: not a loopback address", req.URL.Redacted())
		}
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("visiting callback: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("visiting callback %s%s: %s: %s", callback.Host, callback.Path, resp.Status, truncate(string(body), 500))
	}
	return nil
}

func isLoopback(u *url.URL) bool {
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
