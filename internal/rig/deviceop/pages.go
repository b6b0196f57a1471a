package deviceop

import (
	"html/template"
	"net/http"
	"strings"
)

// verificationPath is the device flow's verification_uri. The OP appends
// ?user_code=… for verification_uri_complete.
const verificationPath = "/device"

const sessionCookie = "deviceop_session"

// pageTemplate is every verification page: one form, an error line. The
// forms carry ids so a test reads them as a person reads the page.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Device sign-in</title></head><body>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if eq .Step "code"}}
<form id="code" method="post" action="/device">
<label>Code shown on your device <input name="user_code" value="{{.UserCode}}"></label>
<button type="submit">Continue</button>
</form>
{{else if eq .Step "login"}}
<form id="login" method="post" action="/device/login">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
{{else if eq .Step "consent"}}
<p>{{.Username}}, {{.ClientID}} asks to sign in as you with the scopes <span id="scopes">{{.Scopes}}</span>.</p>
<form id="consent" method="post" action="/device/consent">
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
{{else}}
<p id="done">{{.Message}}</p>
{{end}}
</body></html>
`))

type pageData struct {
	Step, Error, UserCode, Username, ClientID, Scopes, Message string
}

// pages serves what a person sees at the verification URL: enter the
// code, sign in, allow or deny.
type pages struct {
	store *storage
}

func (p *pages) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+verificationPath, p.code)
	mux.HandleFunc("POST "+verificationPath, p.login)
	mux.HandleFunc("POST "+verificationPath+"/login", p.consent)
	mux.HandleFunc("POST "+verificationPath+"/consent", p.answer)
}

// code asks for the user code, filled in from verification_uri_complete:
// the person still compares it with the device's before going on.
func (p *pages) code(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, pageData{Step: "code", UserCode: r.URL.Query().Get("user_code")})
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	code := normalizeUserCode(r.PostFormValue("user_code"))
	if _, err := p.store.pending(code); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", UserCode: code, Error: err.Error()})
		return
	}
	render(w, http.StatusOK, pageData{Step: "login", UserCode: code})
}

func (p *pages) consent(w http.ResponseWriter, r *http.Request) {
	code := normalizeUserCode(r.PostFormValue("user_code"))
	id, user, err := p.store.signIn(code, r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		render(w, http.StatusUnauthorized, pageData{Step: "login", UserCode: code, Error: err.Error()})
		return
	}
	state, err := p.store.pending(code)
	if err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: err.Error()})
		return
	}
	// The session cookie ties the answer to this sign-in; Strict keeps
	// another site from submitting the consent form for the person.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: verificationPath,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	render(w, http.StatusOK, pageData{Step: "consent", Username: user.Username, ClientID: state.ClientID,
		Scopes: strings.Join(state.Scopes, " ")})
}

func (p *pages) answer(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		render(w, http.StatusUnauthorized, pageData{Step: "code", Error: "you are not signed in: open the link from your device again"})
		return
	}
	action := r.PostFormValue("action")
	if action != "allow" && action != "deny" {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: "choose Allow or Deny"})
		return
	}
	if err := p.store.answer(c.Value, action == "allow"); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: err.Error()})
		return
	}
	msg := "Signed in. You can return to your device."
	if action == "deny" {
		msg = "Sign-in denied. Your device will be told."
	}
	render(w, http.StatusOK, pageData{Step: "done", Message: msg})
}

func render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The pages hold codes and session state: never cached or framed.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}
