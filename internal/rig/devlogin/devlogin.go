package devlogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kip-proxy/kip/internal/rig/hydra"
)

const (
	// maxChallengeLen bounds a challenge. Hydra's challenges carry the
	// encrypted flow and run to a few hundred bytes; anything far longer
	// is not one.
	maxChallengeLen = 8 << 10
	// maxFormBytes bounds a POSTed form.
	maxFormBytes = 64 << 10
	// defaultEmailDomain completes the made-up e-mail addresses.
	defaultEmailDomain = "kip.dev"
)

// Admin is the part of Hydra's admin API the app uses; *hydra.Admin is one.
type Admin interface {
	LoginRequest(ctx context.Context, challenge string) (hydra.LoginRequest, error)
	AcceptLogin(ctx context.Context, challenge string, acc hydra.LoginAcceptance) (string, error)
	ConsentRequest(ctx context.Context, challenge string) (hydra.ConsentRequest, error)
	AcceptConsent(ctx context.Context, challenge string, acc hydra.ConsentAcceptance) (string, error)
}

// Options configures New.
type Options struct {
	// Admin answers Hydra's challenges.
	Admin Admin
	// IssuerURL is Hydra's public endpoint. The app redirects browsers
	// only there, so that nothing but Hydra can send them elsewhere.
	IssuerURL string
	// EmailDomain completes the e-mail claim, <user>@<EmailDomain>.
	// Empty means kip.dev.
	EmailDomain string
	// Log receives why a request failed, which the page itself shows only
	// in short. Nil discards it.
	Log io.Writer
}

// app serves the login and consent pages.
type app struct {
	admin       Admin
	issuer      *url.URL
	emailDomain string
	log         io.Writer
}

// New returns the app's handler, serving GET and POST /login and
// GET /consent. Mount it where Hydra's urls.login and urls.consent point.
// Hydra needs those URLs before it starts and the app needs Hydra after,
// so listen first, start Hydra, then serve the handler.
func New(opts Options) (http.Handler, error) {
	if opts.Admin == nil {
		return nil, errors.New("devlogin: no Hydra admin API given")
	}
	issuer, err := url.Parse(opts.IssuerURL)
	if err != nil || issuer.Scheme == "" || issuer.Host == "" {
		return nil, fmt.Errorf("devlogin: Hydra's issuer URL %q is not an absolute URL", opts.IssuerURL)
	}
	a := &app{admin: opts.Admin, issuer: issuer, emailDomain: opts.EmailDomain, log: opts.Log}
	if a.emailDomain == "" {
		a.emailDomain = defaultEmailDomain
	}
	if a.log == nil {
		a.log = io.Discard
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.showLogin)
	mux.HandleFunc("POST /login", a.acceptLogin)
	mux.HandleFunc("GET /consent", a.acceptConsent)
	return mux, nil
}

// showLogin shows the sign-in form for a challenge Hydra knows.
func (a *app) showLogin(w http.ResponseWriter, r *http.Request) {
	challenge, err := parseChallenge(r.URL.Query().Get("login_challenge"))
	if err != nil {
		a.fail(w, http.StatusBadRequest, "This sign-in link is incomplete.", err)
		return
	}
	req, err := a.admin.LoginRequest(r.Context(), challenge)
	if err != nil {
		a.fail(w, http.StatusBadRequest, "This sign-in link is not valid, or has expired.", err)
		return
	}
	// Hydra already knows who this is and lets nobody else in.
	if req.Skip {
		a.accept(w, r, func(ctx context.Context) (string, error) {
			return a.admin.AcceptLogin(ctx, challenge, hydra.LoginAcceptance{Subject: req.Subject})
		})
		return
	}
	render(w, http.StatusOK, loginPage, page{Title: "sign in", Challenge: challenge, Client: req.Client.ID})
}

// acceptLogin signs in the user the form names, with its groups.
func (a *app) acceptLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.fail(w, http.StatusBadRequest, "The form could not be read.", err)
		return
	}
	challenge, err := parseChallenge(r.PostForm.Get("challenge"))
	if err != nil {
		a.fail(w, http.StatusBadRequest, "The form lost its sign-in link.", err)
		return
	}
	form := page{Title: "sign in", Challenge: challenge, Username: r.PostForm.Get("username"), Groups: r.PostForm.Get("groups")}
	acc, err := parseLoginForm(form.Username, form.Groups)
	if err != nil {
		// A typing mistake gets the form back, filled in as it was.
		form.Error = capitalize(err.Error()) + "."
		render(w, http.StatusBadRequest, loginPage, form)
		return
	}
	a.accept(w, r, func(ctx context.Context) (string, error) {
		return a.admin.AcceptLogin(ctx, challenge, acc)
	})
}

// acceptConsent grants the client every scope it asked for and gives the ID
// token the claims kip reads. There is nothing to ask: in kip dev the
// person signing in and the one running the provider are the same.
func (a *app) acceptConsent(w http.ResponseWriter, r *http.Request) {
	challenge, err := parseChallenge(r.URL.Query().Get("consent_challenge"))
	if err != nil {
		a.fail(w, http.StatusBadRequest, "This consent link is incomplete.", err)
		return
	}
	req, err := a.admin.ConsentRequest(r.Context(), challenge)
	if err != nil {
		a.fail(w, http.StatusBadRequest, "This consent link is not valid, or has expired.", err)
		return
	}
	var login loginContext
	if len(req.Context) > 0 && string(req.Context) != "null" {
		if err := json.Unmarshal(req.Context, &login); err != nil {
			a.fail(w, http.StatusBadGateway, "Hydra returned a sign-in this page did not make.", err)
			return
		}
	}
	a.accept(w, r, func(ctx context.Context) (string, error) {
		return a.admin.AcceptConsent(ctx, challenge, hydra.ConsentAcceptance{
			GrantScope:    req.RequestedScope,
			GrantAudience: req.RequestedAudience,
			IDToken:       idTokenClaims(req.Subject, login.Groups, a.emailDomain),
		})
	})
}

// accept runs an accepting admin call and sends the browser where Hydra
// says, provided that is Hydra itself.
func (a *app) accept(w http.ResponseWriter, r *http.Request, call func(context.Context) (string, error)) {
	to, err := call(r.Context())
	if err != nil {
		a.fail(w, http.StatusBadGateway, "Hydra did not accept the sign-in.", err)
		return
	}
	if err := a.checkRedirect(to); err != nil {
		a.fail(w, http.StatusBadGateway, "Hydra sent this page somewhere unexpected.", err)
		return
	}
	// 303 turns the form's POST into the GET Hydra expects.
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// checkRedirect refuses a redirect_to that leaves Hydra: whoever could
// change it would otherwise have an open redirect on loopback.
func (a *app) checkRedirect(to string) error {
	u, err := url.Parse(to)
	if err != nil {
		return fmt.Errorf("parsing redirect_to: %w", err)
	}
	if u.Scheme != a.issuer.Scheme || u.Host != a.issuer.Host {
		return fmt.Errorf("redirect_to %s is not on Hydra's public endpoint %s", u.Redacted(), a.issuer)
	}
	return nil
}

// fail shows a short message, and logs the reason behind it.
func (a *app) fail(w http.ResponseWriter, status int, message string, err error) {
	_, _ = fmt.Fprintf(a.log, "devlogin: answered %d: %v\n", status, err)
	render(w, status, failurePage, page{Title: "error", Error: message})
}

// parseChallenge checks that s looks like a challenge Hydra issued (base64url
// characters, sane length) before it reaches Hydra's admin API.
func parseChallenge(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("no challenge")
	case len(s) > maxChallengeLen:
		return "", fmt.Errorf("challenge of %d bytes", len(s))
	}
	for _, r := range s {
		if !isBase64URL(r) {
			return "", fmt.Errorf("challenge holds %q", r)
		}
	}
	return s, nil
}

// isBase64URL reports whether r belongs to padded base64url, which is what
// Hydra v2.3.0's challenges (its encrypted flow state) are written in.
func isBase64URL(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '='
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
