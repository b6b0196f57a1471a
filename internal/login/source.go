package login

import (
	"context"
	"time"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// tokenSource supplies the token that is exchanged or handed on.
type tokenSource interface {
	// key is the cache key without mode and kip server.
	key() cache.Key
	// token returns a token. With allowCached it may return the one in e
	// if it is still fresh; cached reports whether it did. It records
	// what it obtained in e.
	token(ctx context.Context, p *Plugin, e *cache.Entry, allowCached bool) (tok string, exp time.Time, cached bool, err error)
	// revoker revokes the tokens it obtained at their issuer; nil when
	// there is nothing to revoke.
	revoker() Revoker
}

type staticSource string

func (s staticSource) key() cache.Key {
	return cache.Key{Kind: "static", TokenSHA256: sha256Hex(string(s))}
}

func (staticSource) revoker() Revoker { return nil }

func (s staticSource) token(context.Context, *Plugin, *cache.Entry, bool) (string, time.Time, bool, error) {
	return string(s), time.Time{}, false, nil
}

type oidcSource struct {
	cfg    Config
	flow   oidcflow.Config
	client *oidcflow.Client
}

func (s *oidcSource) key() cache.Key {
	return cache.Key{Kind: "oidc", Issuer: s.flow.Issuer, ClientID: s.flow.ClientID, Scopes: s.flow.Scopes}
}

func (s *oidcSource) revoker() Revoker { return s.client }

// token prefers, in order: the cached ID token, a refresh, a new sign-in.
func (s *oidcSource) token(ctx context.Context, p *Plugin, e *cache.Entry, allowCached bool) (string, time.Time, bool, error) {
	if allowCached && e.IDToken != "" {
		exp, err := oidcflow.CachedIDTokenExpiry(e.IDToken, s.flow.Issuer, s.flow.ClientID)
		if err != nil {
			p.printf("Ignoring the cached ID token: %v\n", err)
		} else if p.fresh(exp) {
			return e.IDToken, exp, true, nil
		}
	}
	e.IDToken = ""
	if e.RefreshToken != "" {
		t, err := s.client.Refresh(ctx, e.RefreshToken)
		if err == nil {
			s.record(e, t)
			return t.IDToken, t.Expiry, false, nil
		}
		p.printf("Could not refresh the sign-in, signing in again: %v\n", err)
		e.RefreshToken = ""
	}
	t, err := s.client.Login(ctx)
	if err != nil {
		return "", time.Time{}, false, err
	}
	s.record(e, t)
	return t.IDToken, t.Expiry, false, nil
}

func (s *oidcSource) record(e *cache.Entry, t oidcflow.Tokens) {
	e.IDToken = t.IDToken
	e.RefreshToken = t.RefreshToken
}
