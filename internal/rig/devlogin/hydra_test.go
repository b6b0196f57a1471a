package devlogin_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/devlogin"
	"github.com/kip-proxy/kip/internal/rig/hydra"
)

// callbackURI is where the test client's code goes; nothing listens there,
// the browser stops at the redirect.
const callbackURI = "http://127.0.0.1:1/callback"

// TestWithHydra signs in through the app in front of a real Hydra, as a
// person in a browser would in `kip dev`: fill in the form, accept, and
// end at the client with a code whose ID token says what was typed.
func TestWithHydra(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts Ory Hydra")
	}
	h, app := startWithApp(t)
	ctx := oidc.ClientContext(t.Context(), h.HTTPClient())
	provider, err := oidc.NewProvider(ctx, h.IssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	client, err := h.Admin.CreateClient(ctx, hydra.Client{RedirectURIs: []string{callbackURI}})
	if err != nil {
		t.Fatal(err)
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	conf := &oauth2.Config{
		ClientID: client.ID, Endpoint: endpoint, RedirectURL: callbackURI,
		Scopes: []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "email", "groups", "profile"},
	}

	verifier := oauth2.GenerateVerifier()
	browser := newBrowser(t, h)
	form := openLoginForm(t, browser, conf.AuthCodeURL("kip-test-state", oauth2.S256ChallengeOption(verifier)), app)
	callback := submit(t, browser, app+"/login", url.Values{
		"challenge": {form},
		"username":  {"bob"},
		"groups":    {"developers, on-call"},
	})

	tok, err := conf.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: client.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idToken.Subject != "bob" || claims.Email != "bob@kip.dev" || claims.Name != "bob" ||
		!slices.Equal(claims.Groups, []string{"developers", "on-call"}) {
		t.Errorf("ID token: sub %q, claims %+v; want bob, bob@kip.dev, [developers on-call]", idToken.Subject, claims)
	}
}

// startWithApp starts Hydra with the app as its login and consent pages,
// and returns the app's URL.
func startWithApp(t *testing.T) (*hydra.Hydra, string) {
	t.Helper()
	// Hydra must know the app's URL before it starts, and the app Hydra's
	// issuer after; the app joins the mux, which is safe to extend while
	// serving, before any request arrives.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	bins, err := binaries.Ensure(t.Context(), binaries.Options{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hydra.Start(t.Context(), hydra.Options{
		Binary: bins.Hydra, Log: testLog{t},
		LoginURL: srv.URL + "/login", ConsentURL: srv.URL + "/consent",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Stop() })
	app, err := devlogin.New(devlogin.Options{Admin: h.Admin, IssuerURL: h.IssuerURL, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", app)
	return h, srv.URL
}

// newBrowser follows redirects and keeps cookies, as a browser does, but
// stops at the client's callback, which nothing serves.
func newBrowser(t *testing.T, h *hydra.Hydra) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := h.HTTPClient()
	client.Jar = jar
	client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callbackURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return client
}

var challengeField = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// openLoginForm follows the authorization URL to the app's form and
// returns the challenge it carries.
func openLoginForm(t *testing.T, browser *http.Client, authURL, app string) string {
	t.Helper()
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), app+"/login") {
		t.Fatalf("authorization ended at %s with %s, want the login form:\n%s", resp.Request.URL, resp.Status, body)
	}
	for _, id := range []string{`id="username"`, `id="groups"`, `id="accept"`} {
		if !strings.Contains(string(body), id) {
			t.Errorf("login form lacks %s", id)
		}
	}
	m := challengeField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("login form has no challenge:\n%s", body)
	}
	return string(m[1])
}

// submit posts the login form and returns the callback the flow ends at.
func submit(t *testing.T, browser *http.Client, action string, form url.Values) *url.URL {
	t.Helper()
	resp, err := browser.PostForm(action, form)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	loc, err := resp.Location()
	if resp.StatusCode/100 != 3 || err != nil || !strings.HasPrefix(loc.String(), callbackURI) {
		t.Fatalf("sign-in ended at %s with %s (%v), want a redirect to %s:\n%s", resp.Request.URL, resp.Status, err, callbackURI, body)
	}
	if e := loc.Query().Get("error"); e != "" {
		t.Fatalf("sign-in failed: %s: %s", e, loc.Query().Get("error_description"))
	}
	return loc
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
