package login_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"

	"github.com/kip-proxy/kip/internal/login"
	"github.com/kip-proxy/kip/internal/login/exchange"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
	"github.com/kip-proxy/kip/internal/rig/logintest"
)

// env is one fake provider, one fake kip and one cache directory.
type env struct {
	t        *testing.T
	provider *logintest.Provider
	kip      *logintest.Kip
	cacheDir string
}

func newEnv(t *testing.T) *env {
	p := logintest.NewProvider(t)
	return &env{t: t, provider: p, kip: logintest.NewKip(t, p.Valid), cacheDir: t.TempDir()}
}

func (e *env) config(mode login.Mode, stderr *syncBuffer) login.Config {
	return login.Config{
		Mode:     mode,
		CacheDir: e.cacheDir,
		ExecInfo: logintest.ExecInfo(e.t, e.kip.Server.URL, e.kip.ServingCAPEM()),
		Stderr:   stderr,
	}
}

func (e *env) flow() oidcflow.Config {
	return oidcflow.Config{
		Issuer:      e.provider.Issuer,
		ClientID:    logintest.ClientID,
		Scopes:      []string{"offline_access", "email", "groups"},
		HTTPClient:  e.provider.Server.Client(),
		OpenBrowser: e.provider.Browser,
	}
}

// run runs the plugin as kubectl would and decodes its stdout.
func run(t *testing.T, p *login.Plugin) (*clientauthv1.ExecCredential, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := p.Run(ctx, &out); err != nil {
		return nil, err
	}
	var cred clientauthv1.ExecCredential
	if err := json.Unmarshal(out.Bytes(), &cred); err != nil {
		t.Fatalf("stdout is not an ExecCredential: %v\n%s", err, out.String())
	}
	if cred.APIVersion != "client.authentication.k8s.io/v1" || cred.Kind != "ExecCredential" || cred.Status == nil {
		t.Fatalf("unexpected ExecCredential %s", out.String())
	}
	return &cred, nil
}

func mustRun(t *testing.T, p *login.Plugin) *clientauthv1.ExecCredential {
	t.Helper()
	cred, err := run(t, p)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func checkCertificate(t *testing.T, cred *clientauthv1.ExecCredential) {
	t.Helper()
	if _, err := tls.X509KeyPair([]byte(cred.Status.ClientCertificateData), []byte(cred.Status.ClientKeyData)); err != nil {
		t.Fatalf("the certificate and key do not form a pair: %v", err)
	}
	if cred.Status.Token != "" || cred.Status.ExpirationTimestamp == nil {
		t.Fatalf("want a certificate with an expiry and no token, got %+v", cred.Status)
	}
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "login", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestColdLoginThenCacheHit(t *testing.T) {
	e := newEnv(t)
	var stderr syncBuffer
	cred := mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	checkCertificate(t, cred)

	c := e.provider.Counts()
	if c.Authorizations != 1 || c.CodeExchanges != 1 || e.kip.Issued() != 1 {
		t.Fatalf("a cold login should sign in and exchange once: %+v, issued %d", c, e.kip.Issued())
	}
	files := cacheFiles(t, e.cacheDir)
	if len(files) != 1 {
		t.Fatalf("want one cache entry, got %v", files)
	}
	for path, want := range map[string]os.FileMode{files[0]: 0o600, filepath.Dir(files[0]): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
	}
	if b, _ := os.ReadFile(files[0]); !bytes.Contains(b, []byte("refreshToken")) {
		t.Errorf("the cache entry holds no refresh token")
	}

	again := mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	if again.Status.ClientCertificateData != cred.Status.ClientCertificateData {
		t.Error("a second run within the certificate's lifetime did not reuse it")
	}
	if got := e.provider.Counts().Requests; got != c.Requests {
		t.Errorf("a cache hit made %d requests to the provider", got-c.Requests)
	}
	if e.kip.Requests() != 1 {
		t.Errorf("a cache hit made %d requests to kip", e.kip.Requests()-1)
	}
}

func TestExpiredIDTokenIsRefreshed(t *testing.T) {
	e := newEnv(t)
	// 20 s is inside the 30 s margin: every cached ID token counts as expiring.
	e.provider.IDTokenTTL = 20 * time.Second
	var stderr syncBuffer
	first := mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	second := mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	c := e.provider.Counts()
	if c.Authorizations != 1 || c.Refreshes != 1 {
		t.Fatalf("want one sign-in and one refresh, got %+v", c)
	}
	if first.Status.Token == second.Status.Token || !e.provider.Valid(second.Status.Token) {
		t.Error("the refreshed run did not hand out a new valid ID token")
	}
	// The refresh token rotated; the new one must have been cached.
	mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	if c := e.provider.Counts(); c.Authorizations != 1 || c.Refreshes != 2 {
		t.Fatalf("the rotated refresh token was not cached: %+v\n%s", c, stderr.String())
	}
}

func TestExpiringCertificateIsRenewedWithCachedIDToken(t *testing.T) {
	e := newEnv(t)
	e.kip.CertTTL = 10 * time.Second // inside the margin
	var stderr syncBuffer
	mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	if c := e.provider.Counts(); c.Authorizations != 1 || c.Refreshes != 0 || e.kip.Issued() != 2 {
		t.Fatalf("want one sign-in and two certificates, got %+v issued %d", c, e.kip.Issued())
	}
}

func TestTokenMode(t *testing.T) {
	e := newEnv(t)
	var stderr syncBuffer
	cred := mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	if !e.provider.Valid(cred.Status.Token) || cred.Status.ClientCertificateData != "" || cred.Status.ExpirationTimestamp == nil {
		t.Fatalf("want a valid ID token with its expiry, got %+v", cred.Status)
	}
	if e.kip.Requests() != 0 {
		t.Error("token mode must not talk to kip")
	}
	before := e.provider.Counts().Requests
	again := mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), e.flow()))
	if again.Status.Token != cred.Status.Token || e.provider.Counts().Requests != before {
		t.Error("a second run in token mode did not reuse the cached ID token")
	}
}

func TestDeviceFlow(t *testing.T) {
	e := newEnv(t)
	var stderr syncBuffer
	flow := e.flow()
	flow.Flow = oidcflow.FlowDevice
	flow.SkipBrowser = true
	cred := mustRun(t, login.NewOIDC(e.config(login.ModeToken, &stderr), flow))
	if !e.provider.Valid(cred.Status.Token) {
		t.Fatal("the device flow returned no valid ID token")
	}
	c := e.provider.Counts()
	if c.DeviceAuths != 1 || c.DevicePolls != 2 || c.Authorizations != 0 {
		t.Errorf("want one device authorization polled twice, got %+v", c)
	}
	want := oidcflow.SignInURLPrefix + e.provider.Issuer + "/device?user_code=" + logintest.UserCode + "\n" +
		oidcflow.UserCodePrefix + logintest.UserCode + "\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%q\nwant\n%q", stderr.String(), want)
	}
}

// TestSkipBrowserPrintsOneLine drives the browser flow from stderr alone,
// as a script or an end-to-end test would.
func TestSkipBrowserPrintsOneLine(t *testing.T) {
	e := newEnv(t)
	flow := e.flow()
	flow.SkipBrowser = true
	flow.OpenBrowser = func(context.Context, string) error {
		t.Error("the browser was opened despite SkipBrowser")
		return nil
	}
	stderr := &syncBuffer{onLine: func(line string) {
		if u, ok := strings.CutPrefix(line, oidcflow.SignInURLPrefix); ok {
			go func() {
				if err := e.provider.Browser(context.Background(), u); err != nil {
					t.Error(err)
				}
			}()
		}
	}}
	mustRun(t, login.NewOIDC(e.config(login.ModeToken, stderr), flow))
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], oidcflow.SignInURLPrefix) {
		t.Errorf("want exactly one sign-in line on stderr, got %q", stderr.String())
	}
}

func TestConcurrentRunsSignInOnce(t *testing.T) {
	e := newEnv(t)
	const n = 10
	var (
		wg    sync.WaitGroup
		certs sync.Map
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stderr syncBuffer
			cred, err := run(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
			if err != nil {
				t.Error(err)
				return
			}
			certs.Store(i, cred.Status.ClientCertificateData)
		}()
	}
	wg.Wait()
	if c := e.provider.Counts(); c.Authorizations != 1 || e.kip.Issued() != 1 {
		t.Fatalf("%d parallel runs: want one sign-in and one certificate, got %+v issued %d", n, c, e.kip.Issued())
	}
	distinct := map[any]bool{}
	certs.Range(func(_, v any) bool { distinct[v] = true; return true })
	if len(distinct) != 1 {
		t.Errorf("parallel runs handed out %d different certificates", len(distinct))
	}
}

func TestStatic(t *testing.T) {
	const token = "webhook-token"
	tests := []struct {
		name        string
		mode        login.Mode
		token       string
		wantErr     string
		wantRequest int32
	}{
		{name: "certificate", mode: login.ModeCertificate, token: token, wantRequest: 1},
		{name: "token passes through", mode: login.ModeToken, token: token},
		{name: "rejected", mode: login.ModeCertificate, token: "wrong", wantErr: "did not accept the token: authentication failed", wantRequest: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.kip.SetAccept(func(s string) bool { return s == token })
			var stderr syncBuffer
			cred, err := run(t, login.NewStatic(e.config(tc.mode, &stderr), tc.token))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if e.kip.Requests() != tc.wantRequest {
				t.Errorf("kip got %d requests, want %d", e.kip.Requests(), tc.wantRequest)
			}
			switch {
			case err != nil:
			case tc.mode == login.ModeToken:
				if cred.Status.Token != token || cred.Status.ExpirationTimestamp != nil {
					t.Errorf("want the token passed through without expiry, got %+v", cred.Status)
				}
			default:
				checkCertificate(t, cred)
				if b, _ := os.ReadFile(cacheFiles(t, e.cacheDir)[0]); bytes.Contains(b, []byte(token)) {
					t.Error("the static token was written to the cache")
				}
				mustRun(t, login.NewStatic(e.config(tc.mode, &stderr), tc.token))
				if e.kip.Requests() != 1 {
					t.Error("the cached certificate was not reused")
				}
			}
		})
	}
}

func TestRateLimited(t *testing.T) {
	tests := []struct {
		name       string
		limited    int32
		retryAfter string
		statusBody bool
		wantErr    bool
		wantReqs   int32
		minWait    time.Duration
	}{
		{name: "one 429 is waited out", limited: 1, retryAfter: "1", wantReqs: 2, minWait: time.Second},
		{name: "one 429 with a Status body", limited: 1, retryAfter: "1", statusBody: true, wantReqs: 2, minWait: time.Second},
		{name: "two 429s fail", limited: 2, retryAfter: "1", wantErr: true, wantReqs: 2},
		{name: "a long Retry-After fails at once", limited: 1, retryAfter: "3600", wantErr: true, wantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.kip.SetAccept(func(string) bool { return true })
			e.kip.RetryAfter, e.kip.RateLimitStatusBody = tc.retryAfter, tc.statusBody
			e.kip.RateLimitNext(tc.limited)
			var stderr syncBuffer
			start := time.Now()
			_, err := run(t, login.NewStatic(e.config(login.ModeCertificate, &stderr), "t"))
			var limited *exchange.RateLimitedError
			if tc.wantErr != errors.As(err, &limited) {
				t.Fatalf("want rate-limit error %v, got %v", tc.wantErr, err)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "limiting credential exchanges") {
				t.Errorf("unclear message: %v", err)
			}
			if e.kip.Requests() != tc.wantReqs {
				t.Errorf("kip got %d requests, want %d", e.kip.Requests(), tc.wantReqs)
			}
			if d := time.Since(start); d < tc.minWait {
				t.Errorf("retried after %s, before Retry-After", d)
			}
		})
	}
}

func TestRejectedCachedTokenIsReplacedOnce(t *testing.T) {
	e := newEnv(t)
	e.kip.CertTTL = 10 * time.Second // so the second run exchanges again
	var stderr syncBuffer
	mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	first := ""
	e.kip.SetAccept(func(s string) bool {
		if first == "" {
			first = s
		}
		return s != first && e.provider.Valid(s)
	})
	cred := mustRun(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow()))
	checkCertificate(t, cred)
	if c := e.provider.Counts(); c.Authorizations != 1 || c.Refreshes != 1 {
		t.Fatalf("want the rejected cached token replaced by a refresh: %+v", c)
	}
	if !strings.Contains(stderr.String(), "did not accept the cached token") {
		t.Errorf("stderr does not say why it signed in again: %q", stderr.String())
	}

	// A fresh token that kip rejects is an error, not a loop.
	e.kip.SetAccept(func(string) bool { return false })
	if _, err := run(t, login.NewOIDC(e.config(login.ModeCertificate, &stderr), e.flow())); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("want authentication failed, got %v", err)
	}
}

func TestTamperedCacheIsNotTrusted(t *testing.T) {
	tests := []struct {
		name   string
		mode   login.Mode
		tamper func(t *testing.T, e *env, path string)
		// wantAuthorizations and wantIssued count both runs.
		wantAuthorizations int32
		wantRefreshes      int32
		wantIssued         int32
	}{
		{
			name: "garbage", mode: login.ModeCertificate,
			tamper:             func(t *testing.T, _ *env, path string) { write(t, path, []byte("{not json")) },
			wantAuthorizations: 2, wantIssued: 2,
		},
		{
			name: "open to others", mode: login.ModeCertificate,
			tamper: func(t *testing.T, _ *env, path string) {
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantAuthorizations: 2, wantIssued: 2,
		},
		{
			name: "symlink", mode: login.ModeCertificate,
			tamper: func(t *testing.T, _ *env, path string) {
				other := filepath.Join(t.TempDir(), "entry")
				b, _ := os.ReadFile(path)
				write(t, other, b)
				_ = os.Remove(path)
				if err := os.Symlink(other, path); err != nil {
					t.Fatal(err)
				}
			},
			wantAuthorizations: 2, wantIssued: 2,
		},
		{
			name: "certificate of another key", mode: login.ModeCertificate,
			tamper: func(t *testing.T, _ *env, path string) {
				editEntry(t, path, func(m map[string]any) {
					m["clientCertificateData"] = string(pemOfAnotherCertificate(t))
				})
			},
			wantAuthorizations: 1, wantIssued: 2,
		},
		{
			name: "entry of another configuration", mode: login.ModeCertificate,
			tamper: func(t *testing.T, _ *env, path string) {
				editEntry(t, path, func(m map[string]any) { m["key"].(map[string]any)["issuer"] = "https://evil.example.com" })
			},
			wantAuthorizations: 2, wantIssued: 2,
		},
		{
			name: "ID token of another issuer", mode: login.ModeToken,
			tamper: func(t *testing.T, e *env, path string) {
				editEntry(t, path, func(m map[string]any) {
					m["idToken"] = e.provider.IDToken(t, "https://evil.example.com", logintest.ClientID, "", time.Hour)
				})
			},
			wantAuthorizations: 1, wantRefreshes: 1,
		},
		{
			name: "ID token of another client", mode: login.ModeToken,
			tamper: func(t *testing.T, e *env, path string) {
				editEntry(t, path, func(m map[string]any) {
					m["idToken"] = e.provider.IDToken(t, e.provider.Issuer, "someone-else", "", time.Hour)
				})
			},
			wantAuthorizations: 1, wantRefreshes: 1,
		},
		{
			name: "ID token that is not a JWT", mode: login.ModeToken,
			tamper: func(t *testing.T, _ *env, path string) {
				editEntry(t, path, func(m map[string]any) { m["idToken"] = "not-a-jwt" })
			},
			wantAuthorizations: 1, wantRefreshes: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var stderr syncBuffer
			mustRun(t, login.NewOIDC(e.config(tc.mode, &stderr), e.flow()))
			tc.tamper(t, e, cacheFiles(t, e.cacheDir)[0])
			cred := mustRun(t, login.NewOIDC(e.config(tc.mode, &stderr), e.flow()))
			if tc.mode == login.ModeCertificate {
				checkCertificate(t, cred)
			} else if !e.provider.Valid(cred.Status.Token) {
				t.Error("handed out an invalid token")
			}
			c := e.provider.Counts()
			if c.Authorizations != tc.wantAuthorizations || c.Refreshes != tc.wantRefreshes || e.kip.Issued() != tc.wantIssued {
				t.Errorf("got %d sign-ins, %d refreshes, %d certificates; want %d, %d, %d\n%s",
					c.Authorizations, c.Refreshes, e.kip.Issued(), tc.wantAuthorizations, tc.wantRefreshes, tc.wantIssued, stderr.String())
			}
			if !strings.Contains(stderr.String(), "Ignoring") && !strings.Contains(stderr.String(), "Not reusing") {
				t.Errorf("stderr does not say the cache was ignored: %q", stderr.String())
			}
			fi, err := os.Lstat(cacheFiles(t, e.cacheDir)[0])
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("the entry was not replaced by a private regular file: %v %v", fi.Mode(), err)
			}
		})
	}
}

func TestNoKipServer(t *testing.T) {
	e := newEnv(t)
	var stderr syncBuffer
	cfg := e.config(login.ModeCertificate, &stderr)
	cfg.ExecInfo = ""
	_, err := run(t, login.NewStatic(cfg, "t"))
	if err == nil || !strings.Contains(err.Error(), "provideClusterInfo") {
		t.Fatalf("want a hint at provideClusterInfo, got %v", err)
	}
	// --kip-server is the fallback.
	e.kip.SetAccept(func(string) bool { return true })
	cfg.KipServer, cfg.KipCAData = e.kip.Server.URL, e.kip.ServingCAPEM()
	checkCertificate(t, mustRun(t, login.NewStatic(cfg, "t")))
}

// TestGatewayClustersShareOneLogin runs the plugin for clusters of one kip
// gateway, as kubectl does for each context kip kubeconfig --all-clusters
// writes: the exchange goes to kip's root and the first sign-in serves
// every cluster. Addresses that are not a gateway cluster are kip's as
// they are.
func TestGatewayClustersShareOneLogin(t *testing.T) {
	tests := []struct {
		name       string
		servers    []string
		wantIssued int32
		wantErr    string
	}{
		{name: "three clusters, one sign-in", servers: []string{"/clusters/prod", "/clusters/staging/", "/clusters/dev"}, wantIssued: 1},
		{name: "kip's root and a cluster share it too", servers: []string{"", "/clusters/prod"}, wantIssued: 1},
		{name: "a path below a cluster is not kip's root", servers: []string{"/clusters/prod/api"}, wantErr: "not found"},
		{name: "an invalid cluster name is not kip's root", servers: []string{"/clusters/Prod_1"}, wantErr: "not found"},
		{name: "an empty cluster name is not kip's root", servers: []string{"/clusters//"}, wantErr: "not found"},
		{name: "a prefix before /clusters/ is not kip's root", servers: []string{"/kip/clusters/prod"}, wantErr: "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var stderr syncBuffer
			var certs []string
			for _, path := range tc.servers {
				cfg := e.config(login.ModeCertificate, &stderr)
				cfg.ExecInfo = logintest.ExecInfo(t, e.kip.Server.URL+path, e.kip.ServingCAPEM())
				cred, err := run(t, login.NewOIDC(cfg, e.flow()))
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("%s: want an error with %q, got %v", path, tc.wantErr, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				certs = append(certs, cred.Status.ClientCertificateData)
			}
			if c := e.provider.Counts(); c.Authorizations != 1 || e.kip.Issued() != tc.wantIssued {
				t.Errorf("signed in %d times, issued %d certificates; want 1 and %d", c.Authorizations, e.kip.Issued(), tc.wantIssued)
			}
			for _, c := range certs[1:] {
				if c != certs[0] {
					t.Error("a cluster of the same kip got a certificate of its own")
				}
			}
			if files := cacheFiles(t, e.cacheDir); len(files) != 1 {
				t.Errorf("want one cache entry for one kip, got %v", files)
			}
		})
	}
}
