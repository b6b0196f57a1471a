package login_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
	"github.com/kip-proxy/kip/internal/rig/logintest"
)

func logout(t *testing.T, l *login.Logout) (string, error) {
	t.Helper()
	var out bytes.Buffer
	l.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.Run(ctx)
	return out.String(), err
}

func pluginLogout(t *testing.T, p *login.Plugin) (string, error) {
	t.Helper()
	l, err := p.Logout(nil)
	if err != nil {
		t.Fatal(err)
	}
	return logout(t, l)
}

// cachedRefreshToken is the refresh token of the one entry in dir.
func cachedRefreshToken(t *testing.T, e *env, key cache.Key) string {
	t.Helper()
	h, err := cache.New(e.cacheDir).Lock(context.Background(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Unlock() }()
	entry, err := h.Load()
	if err != nil || entry.RefreshToken == "" {
		t.Fatalf("no cached refresh token: %+v %v", entry, err)
	}
	return entry.RefreshToken
}

func refresh(t *testing.T, e *env, rt string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := oidcflow.New(e.flow()).Refresh(ctx, rt)
	return err
}

// TestLogoutRevokesAndDeletes: after a sign-in, logout deletes the entry
// and the provider refuses the refresh token; a login of another
// configuration keeps its entry and its refresh token.
func TestLogoutRevokesAndDeletes(t *testing.T) {
	e := newEnv(t)
	var stderr syncBuffer
	checkCertificate(t, mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow())))
	mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	files := cacheFiles(t, e.cacheDir)
	if len(files) != 2 {
		t.Fatalf("want two entries, got %v", files)
	}
	key := cache.Key{Kind: "oidc", Issuer: e.provider.Issuer, ClientID: logintest.ClientID, Scopes: e.flow().Scopes, Mode: "certificate", KipServer: e.kip.Server.URL}
	revoked := cachedRefreshToken(t, e, key)
	key.Mode, key.KipServer = "token", ""
	kept := cachedRefreshToken(t, e, key)

	out, err := pluginLogout(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	if err != nil {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	for _, want := range []string{"Deleted the cached login for " + e.provider.Issuer, "ID token, refresh token and kip certificate and key", "Revoked the refresh token at", "stay valid until they expire (the ID token at", "kip's certificate at"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q:\n%s", want, out)
		}
	}
	if left, err := cache.New(e.cacheDir).Keys(); err != nil || len(left) != 1 || left[0].Mode != "token" {
		t.Errorf("entries after logout: %+v (%v), want only the token mode's", left, err)
	}
	if n := e.provider.Counts().Revocations; n != 1 {
		t.Errorf("%d revocations, want 1", n)
	}
	if err := refresh(t, e, revoked); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refreshing with the revoked token: %v, want invalid_grant", err)
	}
	if err := refresh(t, e, kept); err != nil {
		t.Errorf("the other login's refresh token was refused: %v", err)
	}
}

// TestLogoutWithoutRevocationEndpoint: the entry goes, and the user learns
// that the refresh token stays valid at the provider.
func TestLogoutWithoutRevocationEndpoint(t *testing.T) {
	e := newEnv(t)
	e.provider.DisableRevocation()
	var stderr syncBuffer
	mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	rt := cachedRefreshToken(t, e, cache.Key{Kind: "oidc", Issuer: e.provider.Issuer, ClientID: logintest.ClientID, Scopes: e.flow().Scopes, Mode: "token"})
	out, err := pluginLogout(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	if err != nil {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if !strings.Contains(out, "has no revocation endpoint: the refresh token was deleted here but stays valid at the provider until it expires there") {
		t.Errorf("the output does not say the token stays valid:\n%s", out)
	}
	if files := cacheFiles(t, e.cacheDir); len(files) != 0 {
		t.Errorf("entries left: %v", files)
	}
	if n := e.provider.Counts().Revocations; n != 0 {
		t.Errorf("%d revocation requests to a provider that has no endpoint", n)
	}
	if err := refresh(t, e, rt); err != nil {
		t.Errorf("the provider without revocation refused the refresh token: %v", err)
	}
}

// TestLogoutRevocationRefused: the provider refuses, the entry is deleted
// regardless, and the error says both.
func TestLogoutRevocationRefused(t *testing.T) {
	e := newEnv(t)
	// The fake provider revokes only for its own client.
	key := cache.Key{Kind: "oidc", Issuer: e.provider.Issuer, ClientID: "someone-else", Mode: "token"}
	saveEntry(t, e.cacheDir, key, cache.Entry{RefreshToken: "rt"})
	flow := e.flow()
	flow.ClientID, flow.Scopes = "someone-else", nil
	out, err := pluginLogout(t, login.NewOIDC(e.config(login.ModeToken, &syncBuffer{}), flow))
	if !errors.Is(err, login.ErrRevocationFailed) || !strings.Contains(err.Error(), "deleted regardless") {
		t.Errorf("err = %v, want ErrRevocationFailed saying the entry was deleted", err)
	}
	if !strings.Contains(out, "Could not revoke the refresh token at "+e.provider.Issuer) || !strings.Contains(out, "401 Unauthorized: invalid_client") || !strings.Contains(out, "The local entry was deleted regardless") {
		t.Errorf("the output does not report the refusal:\n%s", out)
	}
	if files := cacheFiles(t, e.cacheDir); len(files) != 0 {
		t.Errorf("entries left after a refused revocation: %v", files)
	}
}

func saveEntry(t *testing.T, dir string, key cache.Key, entry cache.Entry) {
	t.Helper()
	h, err := cache.New(dir).Lock(context.Background(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Unlock() }()
	if err := h.Save(entry); err != nil {
		t.Fatal(err)
	}
}

// TestLogoutMatchesTheLoginConfiguration: logout with kip login's flags
// removes the entries that login uses with them, at every kip unless one
// is named, and nothing else.
func TestLogoutMatchesTheLoginConfiguration(t *testing.T) {
	const issuer, other = "https://idp.example.com", "https://other.example.com"
	scopes := []string{"offline_access", "email", "groups"}
	entries := map[string]cache.Key{
		"kipA":          {Kind: "oidc", Issuer: issuer, ClientID: "kip", Scopes: scopes, Mode: "certificate", KipServer: "https://kip-a.example.com"},
		"kipB":          {Kind: "oidc", Issuer: issuer, ClientID: "kip", Scopes: scopes, Mode: "certificate", KipServer: "https://kip-b.example.com"},
		"token":         {Kind: "oidc", Issuer: issuer, ClientID: "kip", Scopes: scopes, Mode: "token"},
		"otherClient":   {Kind: "oidc", Issuer: issuer, ClientID: "kip2", Scopes: scopes, Mode: "certificate", KipServer: "https://kip-a.example.com"},
		"otherIssuer":   {Kind: "oidc", Issuer: other, ClientID: "kip", Scopes: scopes, Mode: "certificate", KipServer: "https://kip-a.example.com"},
		"fewerScopes":   {Kind: "oidc", Issuer: issuer, ClientID: "kip", Scopes: []string{"email"}, Mode: "certificate", KipServer: "https://kip-a.example.com"},
		"static":        {Kind: "static", TokenSHA256: "ab", Mode: "certificate", KipServer: "https://kip-a.example.com"},
		"gatewayAtRoot": {Kind: "oidc", Issuer: issuer, ClientID: "kip", Scopes: scopes, Mode: "certificate", KipServer: "https://gw.example.com"},
	}
	tests := []struct {
		name        string
		mode        login.Mode
		kipServer   string
		execCluster string
		scopes      []string
		all         bool
		wantRemoved []string
	}{
		{name: "no kip named: every kip", mode: login.ModeCertificate, wantRemoved: []string{"kipA", "kipB", "gatewayAtRoot"}},
		{name: "scope order does not matter", mode: login.ModeCertificate, scopes: []string{"groups", "email", "offline_access"}, wantRemoved: []string{"kipA", "kipB", "gatewayAtRoot"}},
		{name: "--kip-server names one", mode: login.ModeCertificate, kipServer: "https://kip-a.example.com", wantRemoved: []string{"kipA"}},
		{name: "a trailing slash names the same kip", mode: login.ModeCertificate, kipServer: "https://kip-a.example.com/", wantRemoved: []string{"kipA"}},
		{name: "a gateway's cluster is its kip's root", mode: login.ModeCertificate, kipServer: "https://gw.example.com/clusters/prod", wantRemoved: []string{"gatewayAtRoot"}},
		{name: "kubectl's cluster information as kip login reads it", mode: login.ModeCertificate, execCluster: "https://gw.example.com/clusters/prod", wantRemoved: []string{"gatewayAtRoot"}},
		{name: "token mode", mode: login.ModeToken, wantRemoved: []string{"token"}},
		{name: "an unknown kip removes nothing", mode: login.ModeCertificate, kipServer: "https://kip-c.example.com"},
		{name: "--all", all: true, wantRemoved: slices.Collect(maps.Keys(entries))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, k := range entries {
				saveEntry(t, dir, k, cache.Entry{IDToken: name})
			}
			var l *login.Logout
			if tc.all {
				l = login.LogoutAll(dir, nil, nil)
			} else {
				cfg := login.Config{Mode: tc.mode, CacheDir: dir, KipServer: tc.kipServer}
				if tc.execCluster != "" {
					cfg.ExecInfo = logintest.ExecInfo(t, tc.execCluster, nil)
				}
				flow := oidcflow.Config{Issuer: issuer, ClientID: "kip", Scopes: scopes}
				if tc.scopes != nil {
					flow.Scopes = tc.scopes
				}
				var err error
				if l, err = login.NewOIDC(cfg, flow).Logout(nil); err != nil {
					t.Fatal(err)
				}
			}
			out, err := logout(t, l)
			if err != nil {
				t.Fatalf("logout: %v\n%s", err, out)
			}
			left, err := cache.New(dir).Keys()
			if err != nil {
				t.Fatal(err)
			}
			for name, k := range entries {
				gone := !slices.ContainsFunc(left, func(l cache.Key) bool {
					return l.Issuer == k.Issuer && l.ClientID == k.ClientID && l.KipServer == k.KipServer && l.Mode == k.Mode && slices.Equal(l.Scopes, k.Scopes) && l.Kind == k.Kind
				})
				if want := slices.Contains(tc.wantRemoved, name); gone != want {
					t.Errorf("entry %s removed: %v, want %v", name, gone, want)
				}
			}
			if len(tc.wantRemoved) == 0 && !strings.Contains(out, "No cached login for issuer "+issuer) {
				t.Errorf("the output does not say nothing matched:\n%s", out)
			}
		})
	}
}

// TestLogoutRemovesLeftoverTemporaryFiles: a write that was interrupted
// leaves a temporary file next to the entry; it may hold tokens, so it
// goes too.
func TestLogoutRemovesLeftoverTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	key := cache.Key{Kind: "oidc", Issuer: "https://idp.example.com", ClientID: "kip", Mode: "token"}
	saveEntry(t, dir, key, cache.Entry{IDToken: "x"})
	h, err := cache.New(dir).Lock(context.Background(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	leftover := h.Path() + ".tmp-123"
	_ = h.Unlock()
	write(t, leftover, []byte(`{"refreshToken":"rt"}`))
	if _, err := logout(t, login.LogoutAll(dir, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the temporary file is still there: %v", err)
	}
}
