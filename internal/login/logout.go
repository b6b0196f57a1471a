package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/execcredential"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// Revoker revokes tokens at the identity provider that issued them.
type Revoker interface {
	Revoke(ctx context.Context, token, hint string) error
}

// Logout removes cached logins and revokes their refresh tokens at the
// provider. The local entry goes first and goes whatever the provider
// says: a user logging out on a bad day must be able to count on this
// machine holding nothing afterwards.
type Logout struct {
	CacheDir string
	// Match selects the entries to remove.
	Match func(cache.Key) bool
	// Describe says, in the "nothing matched" message, what was looked for.
	Describe string
	// Revoker returns who revokes the tokens of an OIDC entry.
	Revoker func(cache.Key) Revoker
	// Out is where the user reads what was done.
	Out io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrRevocationFailed means an entry was removed here but its refresh
// token could not be revoked at the provider.
var ErrRevocationFailed = errors.New("revocation at the identity provider failed")

// Logout returns the logout of the entries this plugin's configuration
// uses. kip's address is not in the exec plugin's arguments when kubectl
// provides it, so without --kip-server the entries for every kip match.
func (p *Plugin) Logout(out io.Writer) (*Logout, error) {
	want := p.source.key()
	want.Mode = string(p.cfg.Mode)
	kips, err := p.kipServers()
	if err != nil {
		return nil, err
	}
	return &Logout{
		CacheDir: p.cfg.CacheDir,
		Match: func(k cache.Key) bool {
			got := k
			got.KipServer = ""
			return sameConfiguration(got, want) && (len(kips) == 0 || slices.Contains(kips, k.KipServer))
		},
		Describe: describe(want, kips),
		Revoker:  func(cache.Key) Revoker { return p.source.revoker() },
		Out:      out,
		Now:      p.cfg.Now,
	}, nil
}

// kipServers are the addresses a cache entry of this configuration may
// hold: kip's as given, and kip's root when it is one cluster of a
// gateway, where kip login exchanges and caches.
func (p *Plugin) kipServers() ([]string, error) {
	if p.cfg.Mode != ModeCertificate {
		return nil, nil
	}
	req, err := execcredential.ParseRequest(p.cfg.ExecInfo)
	if err != nil {
		return nil, err
	}
	if req.Cluster == nil && p.cfg.KipServer == "" {
		return nil, nil
	}
	kip, err := p.kipConfig(req)
	if err != nil {
		return nil, err
	}
	// A trailing slash typed by hand names the same kip.
	servers := []string{kip.Host, strings.TrimSuffix(kip.Host, "/"), kipRoot(kip).Host}
	return slices.Compact(servers), nil
}

// LogoutAll removes every cached login. Refresh tokens are revoked with
// what the entry says (issuer and client ID), as a public client: the
// secret of a confidential client is not cached. httpClient talks to the
// providers; nil means http.DefaultClient.
func LogoutAll(cacheDir string, out io.Writer, httpClient *http.Client) *Logout {
	clients := map[[2]string]*oidcflow.Client{}
	return &Logout{
		CacheDir: cacheDir,
		Match:    func(cache.Key) bool { return true },
		Describe: "any configuration",
		Revoker: func(k cache.Key) Revoker {
			id := [2]string{k.Issuer, k.ClientID}
			if clients[id] == nil {
				clients[id] = oidcflow.New(oidcflow.Config{Issuer: k.Issuer, ClientID: k.ClientID, HTTPClient: httpClient})
			}
			return clients[id]
		},
		Out: out,
	}
}

// sameConfiguration compares keys as the cache does: scope order does not
// matter.
func sameConfiguration(a, b cache.Key) bool {
	a.Scopes = slices.Sorted(slices.Values(a.Scopes))
	b.Scopes = slices.Sorted(slices.Values(b.Scopes))
	return slices.Equal(a.Scopes, b.Scopes) && a.Kind == b.Kind && a.Issuer == b.Issuer &&
		a.ClientID == b.ClientID && a.TokenSHA256 == b.TokenSHA256 && a.KipServer == b.KipServer && a.Mode == b.Mode
}

func describe(k cache.Key, kips []string) string {
	s := fmt.Sprintf("kip login %s in %s mode", k.Kind, k.Mode)
	if k.Kind == "oidc" {
		s = fmt.Sprintf("issuer %s, client %s, scopes %v, %s mode", k.Issuer, k.ClientID, k.Scopes, k.Mode)
	}
	if len(kips) > 0 {
		s += ", kip " + kips[0]
	}
	return s
}

// Run removes the matching entries, then revokes their refresh tokens. It
// returns ErrRevocationFailed, after doing everything else, when any
// revocation failed.
func (l *Logout) Run(ctx context.Context) error {
	keys, err := cache.New(l.CacheDir).Keys()
	if err != nil {
		return err
	}
	var failed, removed int
	for _, k := range keys {
		if !l.Match(k) {
			continue
		}
		e, err := l.remove(ctx, k)
		if err != nil {
			return err
		}
		removed++
		if !l.revoke(ctx, k, e) {
			failed++
		}
		l.residual(k, e)
	}
	if removed == 0 {
		l.printf("No cached login for %s in %s; nothing to do.\n", l.Describe, cache.New(l.CacheDir).Dir())
	}
	if failed > 0 {
		return fmt.Errorf("%w for %d of %d logins; their local entries were deleted regardless", ErrRevocationFailed, failed, removed)
	}
	return nil
}

// remove deletes the entry under its lock, so that a kip login running
// now finishes first and no later one finds it, and returns what it held.
func (l *Logout) remove(ctx context.Context, k cache.Key) (cache.Entry, error) {
	h, err := cache.New(l.CacheDir).Lock(ctx, k, func() {
		l.printf("Waiting for a kip login with the same configuration to finish.\n")
	})
	if err != nil {
		return cache.Entry{}, err
	}
	defer func() { _ = h.Unlock() }()
	e, loadErr := h.Load()
	if err := h.Remove(); err != nil {
		return cache.Entry{}, err
	}
	l.printf("Deleted the cached login for %s: %s.\n", describeEntry(k), held(e, loadErr))
	if loadErr != nil {
		// An entry kip would not use is not trusted to name tokens either.
		return cache.Entry{}, nil
	}
	return e, nil
}

// revoke revokes e's refresh token and reports what happened. It returns
// false when the provider did not revoke it.
func (l *Logout) revoke(ctx context.Context, k cache.Key, e cache.Entry) bool {
	if e.RefreshToken == "" || k.Kind != "oidc" {
		return true
	}
	r := l.Revoker(k)
	if r == nil {
		return true
	}
	err := r.Revoke(ctx, e.RefreshToken, oidcflow.HintRefreshToken)
	switch {
	case err == nil:
		l.printf("Revoked the refresh token at %s.\n", k.Issuer)
		return true
	case errors.Is(err, oidcflow.ErrNoRevocationEndpoint):
		l.printf("%s has no revocation endpoint: the refresh token was deleted here but stays valid at the provider until it expires there.\n", k.Issuer)
		return true
	default:
		l.printf("Could not revoke the refresh token at %s: %v. The local entry was deleted regardless; the refresh token may stay valid at the provider until it expires there.\n", k.Issuer, err)
		return false
	}
}

// residual says what logout cannot take back: copies of an ID token or a
// certificate stay valid until they expire, as neither can be recalled by
// the provider.
func (l *Logout) residual(k cache.Key, e cache.Entry) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	var parts []string
	if exp, ok := idTokenExpiry(k, e.IDToken); ok && now().Before(exp) {
		parts = append(parts, "the ID token at "+exp.UTC().Format(time.RFC3339))
	}
	if exp, ok := certificateExpiry(e.Certificate); ok && now().Before(exp) {
		parts = append(parts, "kip's certificate at "+exp.UTC().Format(time.RFC3339))
	}
	if len(parts) > 0 {
		l.printf("Copies made before now stay valid until they expire (%s) unless an administrator revokes them at kip.\n", joinAnd(parts))
	}
}

func (l *Logout) printf(format string, args ...any) {
	if l.Out != nil {
		_, _ = fmt.Fprintf(l.Out, format, args...)
	}
}
