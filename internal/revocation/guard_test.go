package revocation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/metrics/metricstest"
)

func accept(name string) *authenticator.Response {
	return &authenticator.Response{User: &user.DefaultInfo{Name: name}}
}

func TestGuardCertificates(t *testing.T) {
	list := listOf(t, time.Now(), Entry{Kind: KindUser, Value: "alice", Before: time.Now(), Expires: time.Now().Add(time.Hour)})
	rec := metrics.NewRecorder()
	g := NewGuard(list, rec.Revocations())
	certs := authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		return accept(r.Header.Get("X-Name")), true, nil
	})
	guarded := g.Certificates(certs, time.Minute)
	request := func(name string, notBefore time.Time) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://kip/api", nil)
		r.Header.Set("X-Name", name)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{NotBefore: notBefore}}}
		return r
	}
	// NotBefore is backdated by a minute: a certificate issued 30 s ago
	// says it began 90 s ago, and is covered.
	if _, ok, err := guarded.AuthenticateRequest(request("alice", time.Now().Add(-90*time.Second))); ok || err == nil {
		t.Error("a revoked user's older certificate was accepted")
	}
	// One issued a second from now (after the entry) says it began 59 s
	// ago: not covered.
	if _, ok, err := guarded.AuthenticateRequest(request("alice", time.Now().Add(-59*time.Second))); !ok || err != nil {
		t.Errorf("a certificate issued after the entry was refused: %v", err)
	}
	if _, ok, err := guarded.AuthenticateRequest(request("bob", time.Now().Add(-time.Hour))); !ok || err != nil {
		t.Errorf("another user was refused: %v", err)
	}
	if got := metricstest.Value(t, rec, `kip_revocation_refusals_total{kind="user"}`); got != "1" {
		t.Errorf("kip_revocation_refusals_total{kind=\"user\"} is %s, want 1", got)
	}
}

func TestGuardTokens(t *testing.T) {
	now := time.Now()
	list := listOf(t, now, Entry{Kind: KindUser, Value: "alice", Before: now, Expires: now.Add(time.Hour)})
	g := NewGuard(list, nil)
	tokens := g.Tokens(authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
		return accept("alice"), true, nil
	}))
	old := "h." + b64(`{"iat":`+itoa(now.Add(-time.Minute).Unix())+`}`) + ".s"
	fresh := "h." + b64(`{"iat":`+itoa(now.Add(time.Minute).Unix())+`}`) + ".s"
	if _, ok, err := tokens.AuthenticateToken(context.Background(), old); ok || err == nil {
		t.Error("an ID token issued before the entry was accepted")
	}
	if _, ok, err := tokens.AuthenticateToken(context.Background(), fresh); !ok || err != nil {
		t.Errorf("an ID token issued after the entry was refused: %v", err)
	}
	if _, ok, err := tokens.AuthenticateToken(context.Background(), "opaque-webhook-token"); ok || err == nil {
		t.Error("a webhook token, whose issue time kip cannot read, was accepted while the entry is in force")
	}
}

func TestGuardNotReadyRefuses(t *testing.T) {
	g := NewGuard(NewList(nil), nil)
	if g.Ready(nil) == nil {
		t.Error("ready before the list was read")
	}
	tokens := g.Tokens(authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
		return accept("alice"), true, nil
	}))
	if _, ok, _ := tokens.AuthenticateToken(context.Background(), "t"); ok {
		t.Error("a token was accepted before the list was read")
	}
}

func TestNilGuardChangesNothing(t *testing.T) {
	var g *Guard
	tokens := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
		return accept("alice"), true, nil
	})
	if _, ok, _ := g.Tokens(tokens).AuthenticateToken(context.Background(), "t"); !ok {
		t.Error("no list refused a token")
	}
}
