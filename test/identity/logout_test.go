package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// oidcClient is a client `kip login` signs in as; a public one has no
// secret.
type oidcClient struct{ id, secret string }

// loginFlags are kip login's flags for c.
func (c oidcClient) loginFlags() []string {
	return []string{"--client-id=" + c.id, "--client-secret=" + c.secret}
}

// TestLogoutRevokesAtHydra: a user signed in through kubectl runs `kip
// logout` with the arguments of the kubeconfig's exec plugin. Their cache
// entry is gone, Hydra refuses the refresh token that was in it (a token
// Hydra accepted for a refresh just before), and the next kubectl call
// signs in again. So for the public client, which sends its client_id in
// the body, and for a confidential one, which authenticates with its
// secret (Basic) at the token and revocation endpoints.
func TestLogoutRevokesAtHydra(t *testing.T) {
	for _, c := range []oidcClient{{id: clientID}, confidential} {
		t.Run(c.id, func(t *testing.T) { testLogoutRevokes(t, c) })
	}
}

func testLogoutRevokes(t *testing.T, client oidcClient) {
	name, group := harness.UniqueName("logout"), harness.UniqueName("team")
	bindGroup(t, group)
	s := &signInCounter{who: person(name, group)}
	kubeconfig := userKubeconfig(t, "certificate", append([]string{"--skip-browser"}, client.loginFlags()...)...)
	if _, stderr, err := s.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default"); err != nil {
		t.Fatalf("kubectl before logout: %v\n%s", err, stderr)
	}
	loginArgs := execArgs(t, kubeconfig)
	store := cache.New(flagValue(t, loginArgs, "--cache-dir"))
	key := onlyEntry(t, store)

	// Control: Hydra accepts the cached refresh token, which also shows
	// that the refusal after logout is the revocation's doing. Hydra
	// rotates refresh tokens, so the new one goes back into the cache, as
	// kip login would store it.
	refreshed, accessToken, code := hydraRefresh(t, client, cachedEntry(t, store, key).RefreshToken)
	if code != "" {
		t.Fatalf("Hydra refused the cached refresh token before logout: %s", code)
	}
	withEntry(t, store, key, func(e *cache.Entry) { e.RefreshToken = refreshed })
	if !hydraActive(t, accessToken) {
		t.Fatal("Hydra says the access token of the refresh is not active before logout")
	}

	start := time.Now()
	out, err := exec.Command(env.kip, append([]string{"logout"}, loginArgs[1:]...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kip logout: %v\n%s", err, out)
	}
	t.Logf("kip logout took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, want := range []string{"Deleted the cached login for " + env.idp.Hydra.IssuerURL, "Revoked the refresh token at " + env.idp.Hydra.IssuerURL} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kip logout did not say %q", want)
		}
	}
	if keys, err := store.Keys(); err != nil || len(keys) != 0 {
		t.Errorf("cache entries after logout: %+v %v, want none", keys, err)
	}
	if _, _, code := hydraRefresh(t, client, refreshed); code != "invalid_grant" {
		t.Errorf("Hydra answered a refresh with the revoked token with %q, want invalid_grant", orOK(code))
	}
	// kip caches no access token; RFC 7009 §2.1 has the provider revoke
	// those of the same grant with the refresh token, and Hydra does.
	if hydraActive(t, accessToken) {
		t.Error("the access token of the revoked grant is still active at Hydra")
	}

	if _, stderr, err := s.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default"); err != nil {
		t.Fatalf("kubectl after logout: %v\n%s", err, stderr)
	}
	if n := s.take(); n != 2 {
		t.Errorf("%d sign-ins, want 2: one before logout, one after", n)
	}
}

// TestLogoutAgainFindsNothing: a second logout has nothing to delete or
// revoke, says so, and succeeds, so that scripts may run it blindly.
func TestLogoutAgainFindsNothing(t *testing.T) {
	kubeconfig := userKubeconfig(t, "certificate", "--skip-browser")
	args := append([]string{"logout"}, execArgs(t, kubeconfig)[1:]...)
	out, err := exec.Command(env.kip, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No cached login for issuer "+env.idp.Hydra.IssuerURL) {
		t.Errorf("kip logout with an empty cache: %v\n%s", err, out)
	}
}

// execArgs are the arguments of the exec plugin of the kubeconfig's user.
func execArgs(t *testing.T, kubeconfig string) []string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	plugin := cfg.AuthInfos["kip"].Exec
	if plugin == nil || len(plugin.Args) < 2 || plugin.Args[0] != "login" {
		t.Fatalf("the kubeconfig's user does not run kip login: %+v", plugin)
	}
	return plugin.Args
}

func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s in %q", flag, args)
	return ""
}

func onlyEntry(t *testing.T, store *cache.Store) cache.Key {
	t.Helper()
	keys, err := store.Keys()
	if err != nil || len(keys) != 1 {
		t.Fatalf("cache entries %+v (%v), want one", keys, err)
	}
	return keys[0]
}

func cachedEntry(t *testing.T, store *cache.Store, key cache.Key) cache.Entry {
	t.Helper()
	var got cache.Entry
	withEntry(t, store, key, func(e *cache.Entry) { got = *e })
	if got.RefreshToken == "" {
		t.Fatal("the cache entry holds no refresh token")
	}
	return got
}

// withEntry edits the entry under its lock, as kip login does.
func withEntry(t *testing.T, store *cache.Store, key cache.Key, edit func(*cache.Entry)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := store.Lock(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Unlock() }()
	e, err := h.Load()
	if err != nil {
		t.Fatal(err)
	}
	edit(&e)
	if err := h.Save(e); err != nil {
		t.Fatal(err)
	}
}

// hydraRefresh sends a refresh_token grant for client to Hydra's token
// endpoint. It returns the new refresh and access tokens, or the OAuth
// error code Hydra answered with.
func hydraRefresh(t *testing.T, client oidcClient, refreshToken string) (newRefreshToken, accessToken, errorCode string) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	resp := postToHydra(t, env.idp.Hydra.IssuerURL+"/oauth2/token", form, client)
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		RefreshToken string `json:"refresh_token"`
		AccessToken  string `json:"access_token"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("Hydra's token answer (%s): %v", resp.Status, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && body.RefreshToken != "" && body.AccessToken != "":
		return body.RefreshToken, body.AccessToken, ""
	case resp.StatusCode == http.StatusOK:
		t.Fatal("Hydra refreshed without a new refresh or access token")
	case body.Error == "":
		return "", "", fmt.Sprintf("HTTP %s without an OAuth error", resp.Status)
	}
	return "", "", body.Error
}

// hydraActive asks Hydra's admin introspection endpoint whether token is
// active.
func hydraActive(t *testing.T, token string) bool {
	t.Helper()
	resp := postToHydra(t, env.idp.Hydra.AdminURL+"/admin/oauth2/introspect", url.Values{"token": {token}}, oidcClient{})
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("Hydra's introspection answered %s", resp.Status)
	}
	return body.Active
}

// postToHydra posts form to one of Hydra's endpoints as client: its
// client_id in the body for a public client, Basic with its secret for a
// confidential one, nothing for neither. The caller closes the body; the
// whole exchange, body included, has 30 s.
func postToHydra(t *testing.T, endpoint string, form url.Values, client oidcClient) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if client.id != "" && client.secret == "" {
		form.Set("client_id", client.id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client.secret != "" {
		req.SetBasicAuth(url.QueryEscape(client.id), url.QueryEscape(client.secret))
	}
	resp, err := env.idp.Hydra.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func orOK(code string) string {
	if code == "" {
		return "success"
	}
	return code
}

// TestLogoutAllRevokesAtHydra: two logins of one user share a cache (a
// certificate and a token configuration); `kip logout --all` deletes both
// and Hydra refuses both refresh tokens.
func TestLogoutAllRevokesAtHydra(t *testing.T) {
	name := harness.UniqueName("logout-all")
	s := &signInCounter{who: person(name, "devs")}
	cacheDir := t.TempDir()
	for _, mode := range []string{"certificate", "token"} {
		kubeconfig := userKubeconfig(t, mode, "--skip-browser", "--cache-dir="+cacheDir)
		if _, stderr, err := s.kubectl(t, kubeconfig, "auth", "whoami"); err != nil {
			t.Fatalf("kubectl in %s mode: %v\n%s", mode, err, stderr)
		}
	}
	store := cache.New(cacheDir)
	keys, err := store.Keys()
	if err != nil || len(keys) != 2 {
		t.Fatalf("cache entries %+v (%v), want two", keys, err)
	}
	var refreshTokens []string
	for _, k := range keys {
		refreshTokens = append(refreshTokens, cachedEntry(t, store, k).RefreshToken)
	}
	issuerCA := filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(issuerCA, env.idp.Hydra.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(env.kip, "logout", "--all", "--cache-dir="+cacheDir, "--issuer-ca-file="+issuerCA).CombinedOutput()
	if err != nil {
		t.Fatalf("kip logout --all: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "Revoked the refresh token at "+env.idp.Hydra.IssuerURL); n != 2 {
		t.Errorf("kip logout --all revoked %d refresh tokens, want 2:\n%s", n, out)
	}
	if keys, err := store.Keys(); err != nil || len(keys) != 0 {
		t.Errorf("cache entries after logout --all: %+v %v, want none", keys, err)
	}
	for i, rt := range refreshTokens {
		if _, _, code := hydraRefresh(t, oidcClient{id: clientID}, rt); code != "invalid_grant" {
			t.Errorf("refresh token %d: Hydra answered %q, want invalid_grant", i, orOK(code))
		}
	}
}
