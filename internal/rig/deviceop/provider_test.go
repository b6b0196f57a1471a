package deviceop

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

const testClient = "kip-cli"

var alice = User{Subject: "alice-sub", Username: "alice", Password: "alice-password",
	Email: "alice@example.com", Groups: []string{"team-a", "team-b"}}

func startProvider(t *testing.T, opts Options) *Provider {
	t.Helper()
	opts.ClientID = testClient
	opts.Users = []User{alice}
	p, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

// deviceLogin runs kip's own device flow client against p; person answers
// the URL and code it prints.
func deviceLogin(t *testing.T, p *Provider, person func(url, code string) error) (oidcflow.Tokens, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, w := io.Pipe()
	c := oidcflow.New(oidcflow.Config{Issuer: p.IssuerURL, ClientID: testClient, HTTPClient: p.HTTPClient(),
		Scopes: []string{"offline_access", "email", ScopeGroups}, Flow: oidcflow.FlowDevice, SkipBrowser: true, Stderr: w})
	answered := make(chan error, 1)
	go func() { answered <- answerFrom(r, person) }()
	tok, err := c.Login(ctx)
	_ = w.Close()
	if perr := <-answered; perr != nil {
		t.Errorf("the person: %v", perr)
	}
	return tok, err
}

func answerFrom(r io.Reader, person func(url, code string) error) error {
	var url string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), oidcflow.SignInURLPrefix); ok {
			url = u
		}
		if code, ok := strings.CutPrefix(sc.Text(), oidcflow.UserCodePrefix); ok {
			err := person(url, code)
			_, _ = io.Copy(io.Discard, r)
			return err
		}
	}
	return nil
}

func claims(t *testing.T, idToken string) map[string]any {
	t.Helper()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", idToken)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApproveIssuesIDTokenAndRotatingRefreshToken(t *testing.T) {
	p := startProvider(t, Options{})
	ctx := context.Background()
	tok, err := deviceLogin(t, p, func(url, code string) error {
		if !strings.HasPrefix(url, p.IssuerURL+verificationPath+"?user_code=") {
			t.Errorf("verification URL %q, want the provider's /device page with the code", url)
		}
		return p.Approve(ctx, url, code, alice.Username, alice.Password)
	})
	if err != nil {
		t.Fatalf("device sign-in: %v", err)
	}
	c := claims(t, tok.IDToken)
	groups, _ := c["groups"].([]any)
	if c["iss"] != p.IssuerURL || c["sub"] != alice.Subject || c["email"] != alice.Email || c["email_verified"] != true ||
		len(groups) != 2 || groups[0] != "team-a" || groups[1] != "team-b" {
		t.Errorf("ID token claims %v, want alice's issuer, subject, verified email and groups", c)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token although offline_access was asked for")
	}
	kip := oidcflow.New(oidcflow.Config{Issuer: p.IssuerURL, ClientID: testClient, HTTPClient: p.HTTPClient()})
	again, err := kip.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if claims(t, again.IDToken)["email"] != alice.Email || again.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh gave claims %v and refresh token rotated=%v", claims(t, again.IDToken), again.RefreshToken != tok.RefreshToken)
	}
	if _, err := kip.Refresh(ctx, tok.RefreshToken); err == nil {
		t.Error("a spent refresh token was accepted again")
	}
	if g := p.Grants(); g != (Grants{DeviceAuthorizations: 1, Approved: 1, Refreshes: 1}) {
		t.Errorf("grants %+v", g)
	}
}

func TestRefusedSignIns(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		person func(p *Provider, url, code string) error
		// personErr and loginErr are substrings of the errors expected.
		personErr, loginErr string
	}{{
		name: "denied",
		person: func(p *Provider, url, code string) error {
			return p.Deny(context.Background(), url, code, alice.Username, alice.Password)
		},
		loginErr: "was denied",
	}, {
		name: "expired",
		opts: Options{CodeLifetime: 2 * time.Second},
		person: func(*Provider, string, string) error {
			return nil // the person never comes
		},
		loginErr: "expired",
	}, {
		name: "wrong password, then the code expires",
		opts: Options{CodeLifetime: 3 * time.Second},
		person: func(p *Provider, url, code string) error {
			return p.Approve(context.Background(), url, code, alice.Username, "guess")
		},
		personErr: "wrong username or password", loginErr: "expired",
	}, {
		name: "another code",
		opts: Options{CodeLifetime: 3 * time.Second},
		person: func(p *Provider, _, code string) error {
			other := "BCDF-GHJK"
			if code == other {
				other = "GHJK-BCDF"
			}
			return p.Approve(context.Background(), p.IssuerURL+verificationPath, other, alice.Username, alice.Password)
		},
		personErr: "not valid", loginErr: "expired",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProvider(t, tt.opts)
			var personErr error
			tok, err := deviceLogin(t, p, func(url, code string) error {
				personErr = tt.person(p, url, code)
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tt.loginErr) || tok.IDToken != "" {
				t.Errorf("sign-in error %v, want one with %q and no token", err, tt.loginErr)
			}
			if (tt.personErr == "") != (personErr == nil) || personErr != nil && !strings.Contains(personErr.Error(), tt.personErr) {
				t.Errorf("the person's error %v, want %q", personErr, tt.personErr)
			}
			if g := p.Grants(); g.Approved != 0 || g.Refreshes != 0 {
				t.Errorf("grants %+v, want nothing approved", g)
			}
		})
	}
}
