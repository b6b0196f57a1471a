package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func existingFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkErrors asserts that err holds each of want and nothing when want is
// empty.
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("want no error, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want errors %q, got none", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestLoginOIDCValidate(t *testing.T) {
	file := existingFile(t)
	tests := []struct {
		name string
		edit func(o *LoginOIDC)
		want []string
	}{
		{name: "defaults with issuer and client", edit: func(*LoginOIDC) {}},
		{name: "no issuer", edit: func(o *LoginOIDC) { o.Issuer = "" }, want: []string{"--issuer is required"}},
		{name: "http issuer", edit: func(o *LoginOIDC) { o.Issuer = "http://idp.example.com" }, want: []string{`--issuer: "http://idp.example.com" must be an https URL`}},
		{name: "http loopback issuer", edit: func(o *LoginOIDC) { o.Issuer = "http://127.0.0.1:4444" }},
		{name: "relative issuer", edit: func(o *LoginOIDC) { o.Issuer = "idp.example.com" }, want: []string{"is not an absolute URL"}},
		{name: "no client", edit: func(o *LoginOIDC) { o.ClientID = "" }, want: []string{"--client-id is required"}},
		{name: "empty scope", edit: func(o *LoginOIDC) { o.Scopes = []string{"email", ""} }, want: []string{`--scopes: "" is not a scope`}},
		{name: "scope with space", edit: func(o *LoginOIDC) { o.Scopes = []string{"a b"} }, want: []string{`--scopes: "a b" is not a scope`}},
		{name: "no extra scopes", edit: func(o *LoginOIDC) { o.Scopes = nil }},
		{name: "missing issuer CA", edit: func(o *LoginOIDC) { o.IssuerCAFile = "/nonexistent" }, want: []string{"--issuer-ca-file: stat /nonexistent"}},
		{name: "issuer CA", edit: func(o *LoginOIDC) { o.IssuerCAFile = file }},
		{name: "unknown flow", edit: func(o *LoginOIDC) { o.Flow = "implicit" }, want: []string{`--flow must be browser or device, not "implicit"`}},
		{name: "device flow", edit: func(o *LoginOIDC) { o.Flow = "device" }},
		{name: "device flow with listen address", edit: func(o *LoginOIDC) { o.Flow, o.ListenAddress = "device", "127.0.0.1:8000" }, want: []string{"--listen-address is only used with --flow browser"}},
		{name: "listen on all interfaces", edit: func(o *LoginOIDC) { o.ListenAddress = "0.0.0.0:8000" }, want: []string{"must be on the loopback interface"}},
		{name: "listen without port", edit: func(o *LoginOIDC) { o.ListenAddress = "127.0.0.1" }, want: []string{"must be host:port"}},
		{name: "listen on localhost", edit: func(o *LoginOIDC) { o.ListenAddress = "localhost:8000" }},
		{name: "listen on IPv6 loopback", edit: func(o *LoginOIDC) { o.ListenAddress = "[::1]:0" }},
		{name: "skip browser with browser command", edit: func(o *LoginOIDC) { o.SkipBrowser, o.BrowserCommand = true, "firefox" }, want: []string{"--browser-command cannot be combined with --skip-browser"}},
		{name: "unknown mode", edit: func(o *LoginOIDC) { o.Mode = "cookie" }, want: []string{`--mode must be certificate or token, not "cookie"`}},
		{name: "no cache dir", edit: func(o *LoginOIDC) { o.CacheDir = "" }, want: []string{"--cache-dir is required"}},
		{name: "kip server", edit: func(o *LoginOIDC) { o.KipServer, o.KipCAFile = "https://kip.example.com", file }},
		{name: "http kip server", edit: func(o *LoginOIDC) { o.KipServer = "http://127.0.0.1:8443" }, want: []string{`--kip-server: "http://127.0.0.1:8443" must be an https URL`}},
		{name: "kip server in token mode", edit: func(o *LoginOIDC) { o.Mode, o.KipServer = "token", "https://kip.example.com" }, want: []string{"--kip-server is only used with --mode certificate"}},
		{name: "kip CA without server", edit: func(o *LoginOIDC) { o.KipCAFile = file }, want: []string{"--kip-ca-file needs --kip-server"}},
		{name: "missing kip CA", edit: func(o *LoginOIDC) { o.KipServer, o.KipCAFile = "https://kip.example.com", "/nonexistent" }, want: []string{"--kip-ca-file: stat /nonexistent"}},
		{name: "everything wrong at once", edit: func(o *LoginOIDC) { o.Issuer, o.ClientID, o.Mode = "", "", "x" }, want: []string{"--issuer", "--client-id", "--mode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewLoginOIDC()
			o.Issuer, o.ClientID, o.CacheDir = "https://idp.example.com", "kip", t.TempDir()
			tc.edit(o)
			checkErrors(t, o.Validate(), tc.want)
		})
	}
}

func TestLoginOIDCDefaults(t *testing.T) {
	o := NewLoginOIDC()
	if strings.Join(o.Scopes, ",") != DefaultScopes || o.Flow != "browser" || o.Mode != "certificate" || !strings.HasSuffix(o.CacheDir, "kip") {
		t.Errorf("unexpected defaults %+v", o)
	}
}

func TestLoginStaticValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *LoginStatic)
		want []string
	}{
		{name: "token", edit: func(o *LoginStatic) { o.Token = "t" }},
		{name: "token env", edit: func(o *LoginStatic) { o.TokenEnv = "KIP_TOKEN" }},
		{name: "neither", edit: func(*LoginStatic) {}, want: []string{"--token or --token-env is required"}},
		{name: "both", edit: func(o *LoginStatic) { o.Token, o.TokenEnv = "t", "KIP_TOKEN" }, want: []string{"--token and --token-env cannot be combined"}},
		{name: "token mode with kip server", edit: func(o *LoginStatic) { o.Token, o.Mode, o.KipServer = "t", "token", "https://kip" }, want: []string{"--kip-server is only used with --mode certificate"}},
		{name: "unknown mode", edit: func(o *LoginStatic) { o.Token, o.Mode = "t", "x" }, want: []string{"--mode must be certificate or token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewLoginStatic()
			o.CacheDir = t.TempDir()
			tc.edit(o)
			checkErrors(t, o.Validate(), tc.want)
		})
	}
}

func TestLoginStaticTokenEnv(t *testing.T) {
	env := map[string]string{"SET": " tok\n", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, variable, want string
	}{
		{name: "set, trimmed", variable: "SET"},
		{name: "empty", variable: "EMPTY", want: "--token-env: the environment variable EMPTY is unset or empty"},
		{name: "unset", variable: "UNSET", want: "--token-env: the environment variable UNSET is unset or empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewLoginStatic()
			o.TokenEnv = tc.variable
			_, err := o.Plugin(nil, "", lookup)
			if tc.want == "" {
				checkErrors(t, err, nil)
			} else {
				checkErrors(t, err, []string{tc.want})
			}
		})
	}
}

func TestIssuerCAFileMustHoldCertificates(t *testing.T) {
	o := NewLoginOIDC()
	o.Issuer, o.ClientID, o.IssuerCAFile = "https://idp.example.com", "kip", existingFile(t)
	_, err := o.Plugin(nil, "")
	checkErrors(t, err, []string{"holds no PEM certificate"})
}
