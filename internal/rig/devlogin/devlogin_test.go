package devlogin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/hydra"
)

const (
	issuer           = "https://127.0.0.1:4444"
	loginChallenge   = "login-challenge_1"
	skipChallenge    = "login-challenge_skip"
	consentChallenge = "consent-challenge_1"
)

// fakeSetup is how a test wants the fake admin API to behave.
type fakeSetup struct {
	redirectTo   string // what accepting answers; Hydra's own URL unless a test says otherwise
	failAccept   bool
	loginContext string // the consent request's context, as the login left it
}

// fakeAdmin is Hydra's admin API as far as the app uses it: one login and
// one consent challenge it knows, and a record of what was accepted.
type fakeAdmin struct {
	fakeSetup

	mu            sync.Mutex // guards the records, written by the server's goroutines
	loginAccepts  []map[string]any
	consentAccept map[string]any
}

// accepted returns what the app accepted.
func (f *fakeAdmin) accepted() (logins []map[string]any, consent map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loginAccepts, f.consentAccept
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch r.Method + " " + r.URL.Path {
	case "GET /admin/oauth2/auth/requests/login":
		switch q.Get("login_challenge") {
		case loginChallenge:
			writeJSON(w, http.StatusOK, map[string]any{"challenge": loginChallenge, "client": map[string]any{"client_id": "kip-cli"}})
		case skipChallenge:
			writeJSON(w, http.StatusOK, map[string]any{"challenge": skipChallenge, "skip": true, "subject": "remembered"})
		default:
			notFound(w)
		}
	case "PUT /admin/oauth2/auth/requests/login/accept":
		f.accept(w, r, q.Get("login_challenge") == loginChallenge || q.Get("login_challenge") == skipChallenge, func(body map[string]any) {
			f.loginAccepts = append(f.loginAccepts, body)
		})
	case "GET /admin/oauth2/auth/requests/consent":
		if q.Get("consent_challenge") != consentChallenge {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"challenge": consentChallenge, "subject": "alice",
			"requested_scope":                 []string{"openid", "email", "groups"},
			"requested_access_token_audience": []string{"kip"},
			"context":                         json.RawMessage(orNull(f.loginContext)),
		})
	case "PUT /admin/oauth2/auth/requests/consent/accept":
		f.accept(w, r, q.Get("consent_challenge") == consentChallenge, func(body map[string]any) {
			f.consentAccept = body
		})
	default:
		notFound(w)
	}
}

// accept records an accept call's body and answers with redirectTo.
func (f *fakeAdmin) accept(w http.ResponseWriter, r *http.Request, known bool, record func(map[string]any)) {
	if !known {
		notFound(w)
		return
	}
	if f.failAccept {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "request_forbidden", "error_description": "already handled"})
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	f.mu.Lock()
	record(body)
	f.mu.Unlock()
	to := f.redirectTo
	if to == "" {
		to = issuer + "/oauth2/auth?client_id=kip-cli&login_verifier=v"
	}
	writeJSON(w, http.StatusOK, map[string]any{"redirect_to": to})
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": 404, "message": "Unable to locate the resource"}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// newApp serves the app against fake.
func newApp(t *testing.T, fake *fakeAdmin) http.Handler {
	t.Helper()
	admin := httptest.NewServer(fake)
	t.Cleanup(admin.Close)
	h, err := New(Options{Admin: &hydra.Admin{URL: admin.URL, HTTP: admin.Client()}, IssuerURL: issuer, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		form       url.Values
		fake       fakeSetup
		wantStatus int
		wantBody   []string // substrings of the page
		notBody    []string
		wantLogin  map[string]any // the accepted login, if any
	}{
		{
			name: "form", method: "GET", target: "/login?login_challenge=" + loginChallenge,
			wantStatus: http.StatusOK,
			wantBody: []string{`id="username"`, `id="groups"`, `id="accept"`, `value="` + loginChallenge + `"`,
				`<code>kip-cli</code>`, `action="login"`},
		},
		{
			name: "accept", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {" alice "}, "groups": {"developers, on-call,,developers"}},
			wantStatus: http.StatusSeeOther,
			wantLogin:  map[string]any{"subject": "alice", "context": map[string]any{"groups": []any{"developers", "on-call"}}},
		},
		{
			name: "accept without groups", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {"system:admin"}},
			wantStatus: http.StatusSeeOther,
			wantLogin:  map[string]any{"subject": "system:admin", "context": map[string]any{"groups": []any{}}},
		},
		{
			// Hydra already knows the user; the form would only mislead.
			name: "skip", method: "GET", target: "/login?login_challenge=" + skipChallenge,
			wantStatus: http.StatusSeeOther,
			wantLogin:  map[string]any{"subject": "remembered"},
		},
		{
			name: "no challenge", method: "GET", target: "/login",
			wantStatus: http.StatusBadRequest, wantBody: []string{"incomplete"},
		},
		{
			name: "unknown challenge", method: "GET", target: "/login?login_challenge=forged",
			wantStatus: http.StatusBadRequest, wantBody: []string{"not valid"},
		},
		{
			name: "hostile challenge", method: "GET", target: "/login?login_challenge=" + url.QueryEscape(`"><script>alert(1)</script>`),
			wantStatus: http.StatusBadRequest, notBody: []string{"<script>"},
		},
		{
			name: "challenge smuggling a parameter", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge + "&login_challenge=other"}, "username": {"alice"}},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "empty user name", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {"  "}, "groups": {"ops"}},
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"Enter a user name.", `value="ops"`, `id="accept"`},
		},
		{
			name: "markup in the user name", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {`<img src=x onerror=alert(1)>`}},
			wantStatus: http.StatusBadRequest,
			wantBody:   []string{"&lt;img src=x onerror=alert(1)&gt;"},
			notBody:    []string{"<img"},
		},
		{
			name: "control character in a group", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {"alice"}, "groups": {"ops\nsystem:masters"}},
			wantStatus: http.StatusBadRequest, wantBody: []string{"control character"},
		},
		{
			name: "Hydra refuses", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {"alice"}},
			fake:       fakeSetup{failAccept: true},
			wantStatus: http.StatusBadGateway, wantBody: []string{"did not accept"},
		},
		{
			name: "redirect away from Hydra", method: "POST", target: "/login",
			form:       url.Values{"challenge": {loginChallenge}, "username": {"alice"}},
			fake:       fakeSetup{redirectTo: "https://evil.example/steal"},
			wantStatus: http.StatusBadGateway, wantBody: []string{"unexpected"},
			// Hydra took the login; the browser just does not follow.
			wantLogin: map[string]any{"subject": "alice", "context": map[string]any{"groups": []any{}}},
		},
		{
			name: "other methods", method: "PUT", target: "/login",
			wantStatus: http.StatusMethodNotAllowed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeAdmin{fakeSetup: tt.fake}
			resp := do(t, newApp(t, fake), tt.method, tt.target, tt.form)
			defer func() { _ = resp.Body.Close() }()
			checkResponse(t, resp, tt.wantStatus, tt.wantBody, tt.notBody)
			logins, _ := fake.accepted()
			switch {
			case tt.wantLogin == nil && len(logins) > 0:
				t.Errorf("accepted %v, want nothing accepted", logins)
			case tt.wantLogin != nil:
				if len(logins) != 1 {
					t.Fatalf("accepted %v, want exactly %v", logins, tt.wantLogin)
				}
				assertJSONEqual(t, logins[0], tt.wantLogin)
			}
		})
	}
}

func TestConsent(t *testing.T) {
	tests := []struct {
		name        string
		target      string
		fake        fakeSetup
		wantStatus  int
		wantBody    []string
		wantConsent map[string]any
	}{
		{
			name:       "grants and fills the ID token",
			target:     "/consent?consent_challenge=" + consentChallenge,
			fake:       fakeSetup{loginContext: `{"groups":["developers","on-call"]}`},
			wantStatus: http.StatusSeeOther,
			wantConsent: map[string]any{
				"grant_scope":                 []any{"openid", "email", "groups"},
				"grant_access_token_audience": []any{"kip"},
				"session": map[string]any{"id_token": map[string]any{
					"email": "alice@kip.dev", "email_verified": true, "name": "alice",
					"groups": []any{"developers", "on-call"},
				}},
			},
		},
		{
			// A login from elsewhere (Hydra's CLI, say) carries no context.
			name:       "no groups",
			target:     "/consent?consent_challenge=" + consentChallenge,
			wantStatus: http.StatusSeeOther,
			wantConsent: map[string]any{
				"grant_scope":                 []any{"openid", "email", "groups"},
				"grant_access_token_audience": []any{"kip"},
				"session": map[string]any{"id_token": map[string]any{
					"email": "alice@kip.dev", "email_verified": true, "name": "alice", "groups": []any{},
				}},
			},
		},
		{
			name: "unknown challenge", target: "/consent?consent_challenge=forged",
			wantStatus: http.StatusBadRequest, wantBody: []string{"not valid"},
		},
		{
			name: "no challenge", target: "/consent",
			wantStatus: http.StatusBadRequest, wantBody: []string{"incomplete"},
		},
		{
			name:       "context this app did not write",
			target:     "/consent?consent_challenge=" + consentChallenge,
			fake:       fakeSetup{loginContext: `{"groups":"not a list"}`},
			wantStatus: http.StatusBadGateway,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeAdmin{fakeSetup: tt.fake}
			resp := do(t, newApp(t, fake), "GET", tt.target, nil)
			defer func() { _ = resp.Body.Close() }()
			checkResponse(t, resp, tt.wantStatus, tt.wantBody, nil)
			_, consent := fake.accepted()
			if tt.wantConsent == nil {
				if consent != nil {
					t.Errorf("consented %v, want nothing", consent)
				}
				return
			}
			assertJSONEqual(t, consent, tt.wantConsent)
		})
	}
}

func TestNewRefuses(t *testing.T) {
	admin := &hydra.Admin{URL: "https://127.0.0.1:1"}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{name: "no admin", opts: Options{IssuerURL: issuer}, want: "no Hydra admin API"},
		{name: "no issuer", opts: Options{Admin: admin}, want: "not an absolute URL"},
		{name: "relative issuer", opts: Options{Admin: admin, IssuerURL: "/hydra"}, want: "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseGroups(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: []string{}},
		{in: " , ,", want: []string{}},
		{in: "a,b , a", want: []string{"a", "b"}},
		{in: "kip admins, system:masters", want: []string{"kip admins", "system:masters"}},
		{in: "a\tb", wantErr: true},
		{in: strings.Repeat("g", maxNameLen+1), wantErr: true},
		// Repeats collapse before the count, so many copies of one are fine.
		{in: strings.Repeat("g,", maxGroups) + "last", want: []string{"g", "last"}},
		{in: manyGroups(maxGroups + 1), wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseGroups(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseGroups(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseGroups(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// manyGroups is a list of n distinct groups.
func manyGroups(n int) string {
	groups := make([]string, n)
	for i := range groups {
		groups[i] = "group-" + strconv.Itoa(i)
	}
	return strings.Join(groups, ",")
}

func do(t *testing.T, h http.Handler, method, target string, form url.Values) *http.Response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func checkResponse(t *testing.T, resp *http.Response, wantStatus int, wantBody, notBody []string) {
	t.Helper()
	data, _ := io.ReadAll(resp.Body)
	body := string(data)
	if resp.StatusCode != wantStatus {
		t.Fatalf("status = %d, want %d; body:\n%s", resp.StatusCode, wantStatus, body)
	}
	for _, s := range wantBody {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%s", s, body)
		}
	}
	for _, s := range notBody {
		if strings.Contains(body, s) {
			t.Errorf("page holds %q:\n%s", s, body)
		}
	}
	switch {
	case resp.StatusCode == http.StatusSeeOther:
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, issuer+"/") {
			t.Errorf("redirect to %q, want Hydra at %s", loc, issuer)
		}
	case resp.StatusCode != http.StatusMethodNotAllowed:
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	}
}

func assertJSONEqual(t *testing.T, got, want map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("got  %s\nwant %s", g, w)
	}
}

// testLog sends the app's failure reasons to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
