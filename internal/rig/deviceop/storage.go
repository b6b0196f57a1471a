package deviceop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	accessTokenLifetime  = 5 * time.Minute
	refreshTokenLifetime = 24 * time.Hour
)

// errNoAuthCodeFlow answers the authorization code flow's storage calls:
// this provider signs people in with the device flow only.
var errNoAuthCodeFlow = errors.New("this provider offers the device authorization grant only")

// storage is the provider's state, all in memory. The OP calls it from
// its handlers and the verification pages from theirs, so one mutex
// guards everything.
type storage struct {
	key    signingKey
	client *publicClient
	users  []User

	mu            sync.Mutex
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
	devices       map[string]*deviceEntry // by device code
	userCodes     map[string]string       // user code to device code
	sessions      map[string]session      // by cookie value
	grants        Grants
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest  = (*storage)(nil)
)

type accessToken struct {
	id, subject, clientID string
	scopes                []string
	expiry                time.Time
}

type refreshToken struct {
	token, subject, clientID string
	scopes, amr              []string
	authTime, expiry         time.Time
	accessTokenID            string
}

func newStorage(client *publicClient, users []User) (*storage, error) {
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	return &storage{
		key: key, client: client, users: users,
		accessTokens:  map[string]*accessToken{},
		refreshTokens: map[string]*refreshToken{},
		devices:       map[string]*deviceEntry{},
		userCodes:     map[string]string{},
		sessions:      map[string]session{},
	}, nil
}

// The authorization code flow is not offered.

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNoAuthCodeFlow
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNoAuthCodeFlow
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNoAuthCodeFlow
}
func (s *storage) SaveAuthCode(context.Context, string, string) error { return errNoAuthCodeFlow }
func (s *storage) DeleteAuthRequest(context.Context, string) error    { return errNoAuthCodeFlow }

// CreateAccessToken is called for a device sign-in without offline_access.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newAccessToken(req)
	return t.id, t.expiry, nil
}

func (s *storage) newAccessToken(req op.TokenRequest) *accessToken {
	t := &accessToken{id: randomString(), subject: req.GetSubject(), scopes: req.GetScopes(),
		expiry: time.Now().Add(accessTokenLifetime)}
	if c, ok := req.(interface{ GetClientID() string }); ok {
		t.clientID = c.GetClientID()
	}
	s.accessTokens[t.id] = t
	return t
}

// CreateAccessAndRefreshTokens issues a refresh token for a device sign-in
// that asked for offline_access, and rotates it on every refresh: the
// token presented is spent.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newAccessToken(req)
	rt := &refreshToken{token: randomString(), subject: at.subject, clientID: at.clientID, scopes: at.scopes,
		expiry: time.Now().Add(refreshTokenLifetime), accessTokenID: at.id}
	if r, ok := req.(interface {
		GetAMR() []string
		GetAuthTime() time.Time
	}); ok {
		rt.amr, rt.authTime = r.GetAMR(), r.GetAuthTime()
	}
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok {
			return "", "", time.Time{}, errors.New("the refresh token was already used or revoked")
		}
		s.spend(old)
		s.grants.Refreshes++
	}
	s.refreshTokens[rt.token] = rt
	return at.id, rt.token, at.expiry, nil
}

// spend removes a refresh token and the access token issued with it.
func (s *storage) spend(rt *refreshToken) {
	delete(s.refreshTokens, rt.token)
	delete(s.accessTokens, rt.accessTokenID)
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || time.Now().After(rt.expiry) {
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshRequest{rt: *rt}, nil
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshTokens {
		if rt.subject == userID && rt.clientID == clientID {
			s.spend(rt)
		}
	}
	return nil
}

// RevokeToken is RFC 7009: an unknown token is not an error.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
		}
		s.spend(rt)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return &s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.key.SignatureAlgorithm()}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	if clientID != s.client.id {
		return nil, fmt.Errorf("no client %q", clientID)
	}
	return s.client, nil
}

// AuthorizeClientIDSecret refuses every secret: the one client is public.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, _ string) error {
	return fmt.Errorf("client %q is public and has no secret", clientID)
}

// SetUserinfoFromScopes is deprecated in favour of SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, req.GetSubject(), scopes)
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	at, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(at.expiry) {
		return errors.New("the access token is not valid")
	}
	return s.setUserinfo(info, at.subject, at.scopes)
}

func (s *storage) setUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.userBySubject(subject)
	if !ok {
		return fmt.Errorf("no user %q", subject)
	}
	info.Subject = u.Subject
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, true
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
		case ScopeGroups:
			info.AppendClaims("groups", append([]string{}, u.Groups...))
		}
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is for confidential clients, and this provider has none")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client authentication is not offered")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not offered")
}

func (s *storage) Health(context.Context) error { return nil }

func (s *storage) userBySubject(subject string) (User, bool) {
	for _, u := range s.users {
		if u.Subject == subject {
			return u, true
		}
	}
	return User{}, false
}

// refreshRequest is what the OP knows of a sign-in when a refresh token
// comes back: the same user, client and scopes.
type refreshRequest struct{ rt refreshToken }

func (r *refreshRequest) GetAMR() []string             { return r.rt.amr }
func (r *refreshRequest) GetAudience() []string        { return []string{r.rt.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time       { return r.rt.authTime }
func (r *refreshRequest) GetClientID() string          { return r.rt.clientID }
func (r *refreshRequest) GetScopes() []string          { return r.rt.scopes }
func (r *refreshRequest) GetSubject() string           { return r.rt.subject }
func (r *refreshRequest) SetCurrentScopes(sc []string) { r.rt.scopes = sc }

// signingKey signs ID tokens with RS256, which every OIDC client accepts.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newSigningKey() (signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{id: randomString()[:16], key: k}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// randomString is 256 random bits, for tokens, codes and sessions.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
