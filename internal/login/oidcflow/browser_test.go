package oidcflow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/logintest"
)

func TestCallback(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		redeemErr  error
		wantStatus int
		wantResult bool
		wantErr    string
	}{
		{name: "success", query: "state=s&code=c", wantStatus: http.StatusOK, wantResult: true},
		{name: "wrong state is refused and does not end the sign-in", query: "state=forged&code=c", wantStatus: http.StatusBadRequest},
		{name: "no state", query: "code=c", wantStatus: http.StatusBadRequest},
		{name: "provider error", query: "state=s&error=access_denied&error_description=no", wantStatus: http.StatusBadRequest, wantResult: true, wantErr: "refused the sign-in: access_denied no"},
		{name: "no code", query: "state=s", wantStatus: http.StatusBadRequest, wantResult: true, wantErr: "no authorization code"},
		{name: "redeem fails", query: "state=s&code=c", redeemErr: errors.New("bad nonce"), wantStatus: http.StatusBadRequest, wantResult: true, wantErr: "bad nonce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := &callback{state: "s", result: make(chan callbackResult, 1), redeem: func(code string) (Tokens, error) {
				return Tokens{IDToken: "id-" + code}, tc.redeemErr
			}}
			rec := httptest.NewRecorder()
			cb.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, CallbackPath+"?"+tc.query, nil))
			if rec.Code != tc.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			select {
			case r := <-cb.result:
				if !tc.wantResult {
					t.Fatalf("the sign-in ended: %+v", r)
				}
				if tc.wantErr == "" && (r.err != nil || r.tokens.IDToken != "id-c") {
					t.Errorf("unexpected result %+v", r)
				}
				if tc.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr)) {
					t.Errorf("error %v, want %q", r.err, tc.wantErr)
				}
			default:
				if tc.wantResult {
					t.Fatal("no result")
				}
			}
			// A second valid callback never replaces the first result.
			rec = httptest.NewRecorder()
			cb.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, CallbackPath+"?state=s&code=other", nil))
			if tc.wantResult && rec.Code != http.StatusConflict {
				t.Errorf("a second callback got %d", rec.Code)
			}
		})
	}
}

func TestBrowserLoginVerifiesTokens(t *testing.T) {
	p := logintest.NewProvider(t)
	var redirect string
	c := New(Config{
		Issuer: p.Issuer, ClientID: logintest.ClientID, HTTPClient: p.Server.Client(),
		OpenBrowser: func(ctx context.Context, u string) error { redirect = u; return p.Browser(ctx, u) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := c.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Valid(tok.IDToken) || tok.RefreshToken == "" || time.Until(tok.Expiry) < 50*time.Minute {
		t.Errorf("unexpected tokens %+v", tok)
	}
	for _, want := range []string{"code_challenge_method=S256", "nonce=", "state=", "redirect_uri=http%3A%2F%2F127.0.0.1%3A", "%2Fcallback", "scope=openid"} {
		if !strings.Contains(redirect, want) {
			t.Errorf("sign-in URL %s lacks %s", redirect, want)
		}
	}
	// A client with another ID never accepts this provider's tokens.
	other := New(Config{Issuer: p.Issuer, ClientID: "other", HTTPClient: p.Server.Client()})
	if _, err := other.Refresh(ctx, tok.RefreshToken); err == nil || !strings.Contains(err.Error(), "verifying the ID token") {
		t.Errorf("a token for another audience was accepted: %v", err)
	}
}

func TestCachedIDTokenExpiry(t *testing.T) {
	p := logintest.NewProvider(t)
	tests := []struct {
		name, raw, wantErr string
	}{
		{name: "good", raw: p.IDToken(t, p.Issuer, logintest.ClientID, "", time.Hour)},
		{name: "other issuer", raw: p.IDToken(t, "https://evil", logintest.ClientID, "", time.Hour), wantErr: "is from"},
		{name: "other client", raw: p.IDToken(t, p.Issuer, "x", "", time.Hour), wantErr: "not for client"},
		{name: "garbage", raw: "a.b.c", wantErr: "not a JWT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := CachedIDTokenExpiry(tc.raw, p.Issuer, logintest.ClientID)
			if tc.wantErr == "" {
				if err != nil || time.Until(exp) < 50*time.Minute {
					t.Errorf("exp %s, err %v", exp, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
