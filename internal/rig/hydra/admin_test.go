package hydra

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// recorded is one request the fake admin API saw.
type recorded struct {
	method, path, rawQuery string
	body                   map[string]any
}

// fakeAdminAPI answers every request with status and answer, and records
// what it was sent.
func fakeAdminAPI(t *testing.T, status int, answer string) (*Admin, *[]recorded) {
	t.Helper()
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery}
		_ = json.NewDecoder(r.Body).Decode(&rec.body)
		seen = append(seen, rec)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	return &Admin{URL: srv.URL, HTTP: srv.Client()}, &seen
}

func TestCreateClient(t *testing.T) {
	tests := []struct {
		name       string
		client     Client
		wantMethod string
		wantGrants []any
	}{
		{
			// A CLI cannot keep a secret; Hydra must not expect one.
			name:       "public",
			client:     Client{ID: "kip-cli", RedirectURIs: []string{"http://127.0.0.1:8000/callback"}},
			wantMethod: "none",
			wantGrants: []any{"authorization_code", "refresh_token"},
		},
		{
			name:       "confidential",
			client:     Client{ID: "kip-web", Secret: "a-long-secret", GrantTypes: []string{"authorization_code"}},
			wantMethod: "client_secret_basic",
			wantGrants: []any{"authorization_code"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin, seen := fakeAdminAPI(t, http.StatusCreated, `{"client_id":"`+tt.client.ID+`","scope":"openid email"}`)
			got, err := admin.CreateClient(t.Context(), tt.client)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.client.ID || strings.Join(got.Scopes, " ") != "openid email" {
				t.Errorf("CreateClient() = %+v", got)
			}
			req := (*seen)[0]
			if req.method != http.MethodPost || req.path != "/admin/clients" {
				t.Errorf("sent %s %s, want POST /admin/clients", req.method, req.path)
			}
			if m := req.body["token_endpoint_auth_method"]; m != tt.wantMethod {
				t.Errorf("token_endpoint_auth_method = %v, want %s", m, tt.wantMethod)
			}
			if g, _ := json.Marshal(req.body["grant_types"]); string(g) != mustJSON(tt.wantGrants) {
				t.Errorf("grant_types = %s, want %s", g, mustJSON(tt.wantGrants))
			}
			if s := req.body["scope"]; s != "openid offline_access email groups profile" {
				t.Errorf("scope = %v, want kip's default scopes", s)
			}
		})
	}
}

// A challenge goes to Hydra as one escaped query parameter, whatever it
// holds, so a hostile one cannot smuggle in another.
func TestChallengeIsEscaped(t *testing.T) {
	admin, seen := fakeAdminAPI(t, http.StatusOK, `{"redirect_to":"https://127.0.0.1:1/oauth2/auth"}`)
	hostile := "abc&login_challenge=other#frag"
	if _, err := admin.AcceptLogin(t.Context(), hostile, LoginAcceptance{Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	if got, want := (*seen)[0].rawQuery, "login_challenge=abc%26login_challenge%3Dother%23frag"; got != want {
		t.Errorf("query = %s, want %s", got, want)
	}
}

func TestAdminErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		answer  string
		wantErr string
	}{
		{
			name:    "OAuth2 error",
			status:  http.StatusNotFound,
			answer:  `{"error":"Not Found","error_description":"Unable to locate the requested resource"}`,
			wantErr: "Hydra answered 404 Not Found: Not Found: Unable to locate the requested resource",
		},
		{
			name:    "generic error",
			status:  http.StatusConflict,
			answer:  `{"error":{"code":409,"message":"The request could not be completed","reason":"already used"}}`,
			wantErr: "Hydra answered 409 Conflict: The request could not be completed; already used",
		},
		{
			name:    "not JSON",
			status:  http.StatusBadGateway,
			answer:  "upstream down",
			wantErr: "Hydra answered 502 Bad Gateway: upstream down",
		},
		{
			name:    "success that is not JSON",
			status:  http.StatusOK,
			answer:  "<html>",
			wantErr: "decoding Hydra's answer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin, _ := fakeAdminAPI(t, tt.status, tt.answer)
			_, err := admin.LoginRequest(t.Context(), "challenge")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRotateSigningKeyChecksTheAnswer(t *testing.T) {
	admin, seen := fakeAdminAPI(t, http.StatusCreated, `{"keys":[{"kid":"someone-else"}]}`)
	if _, err := admin.RotateSigningKey(t.Context()); err == nil {
		t.Error("RotateSigningKey accepted an answer without the new key")
	}
	req := (*seen)[0]
	if req.path != "/admin/keys/"+IDTokenKeySet || req.body["alg"] != "RS256" || req.body["use"] != "sig" {
		t.Errorf("sent %s %v, want an RS256 signing key for %s", req.path, req.body, IDTokenKeySet)
	}
}

func TestConfig(t *testing.T) {
	s := serveConfig{publicPort: 4444, adminPort: 4445, certFile: "/c.crt", keyFile: "/c.key", systemSecret: "secret"}
	tests := []struct {
		name string
		opts Options
		want map[string]string // dotted path → JSON value
	}{
		{
			name: "defaults",
			want: map[string]string{
				"dsn":                  `"memory"`,
				"serve.tls.enabled":    "true",
				"serve.tls.cert.path":  `"/c.crt"`,
				"serve.public.host":    `"127.0.0.1"`,
				"urls.self.issuer":     `"https://127.0.0.1:4444"`,
				"urls.login":           "null", // Hydra's fallback page
				"ttl.access_token":     `"15m0s"`,
				"ttl.refresh_token":    `"24h0m0s"`,
				"serve.cookies.secure": "true",
				"oauth2.pkce.enforced_for_public_clients": "true",
			},
		},
		{
			name: "login app and lifespans",
			opts: Options{
				LoginURL: "http://127.0.0.1:9000/login", ConsentURL: "http://127.0.0.1:9000/consent",
				AccessTokenLifespan: 30 * time.Second, IDTokenLifespan: time.Minute,
			},
			want: map[string]string{
				"urls.login":       `"http://127.0.0.1:9000/login"`,
				"urls.consent":     `"http://127.0.0.1:9000/consent"`,
				"ttl.access_token": `"30s"`,
				"ttl.id_token":     `"1m0s"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(tt.opts, s)
			for path, want := range tt.want {
				if got := mustJSON(lookup(cfg, path)); got != want {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
		})
	}
}

// lookup follows a dotted path through nested maps.
func lookup(m map[string]any, path string) any {
	var v any = m
	for key := range strings.SplitSeq(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[key]
	}
	return v
}

func mustJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}
