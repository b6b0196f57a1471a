package oidcflow

import (
	"context"
	"crypto/subtle"
	"fmt"
	"html/template"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// CallbackPath is the path of the redirect URI on the loopback listener.
const CallbackPath = "/callback"

// SignInURLPrefix starts the one line printed with SkipBrowser, so that
// scripts and tests can find the URL.
const SignInURLPrefix = "Open this URL to sign in: "

// browserLogin runs the authorization code flow with PKCE. The redirect URI
// is a listener on the loopback interface, which only this machine reaches.
func (c *Client) browserLogin(ctx context.Context, p *oidc.Provider) (Tokens, error) {
	ln, redirectURL, err := c.listen()
	if err != nil {
		return Tokens{}, err
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	cfg := c.oauth2Config(p, redirectURL)
	cb := &callback{
		state:  state,
		result: make(chan callbackResult, 1),
		redeem: func(code string) (Tokens, error) {
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				return Tokens{}, fmt.Errorf("redeeming the authorization code at %s: %w", c.cfg.Issuer, err)
			}
			return c.tokensFrom(ctx, p, tok, nonce)
		},
	}
	srv := &http.Server{Handler: cb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer shutdown(srv)

	c.presentURL(ctx, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	select {
	case r := <-cb.result:
		return r.tokens, r.err
	case <-ctx.Done():
		return Tokens{}, fmt.Errorf("waiting for the browser sign-in: %w", ctx.Err())
	}
}

// listen opens the callback listener and returns the redirect URI for it,
// with the port the system chose when the address asked for port 0.
func (c *Client) listen() (net.Listener, string, error) {
	addr := c.cfg.ListenAddress
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("--listen-address %q: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("opening the sign-in callback listener on %s: %w", addr, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, "http://" + net.JoinHostPort(host, port) + CallbackPath, nil
}

// shutdown lets the browser receive the result page, then stops.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

type callbackResult struct {
	tokens Tokens
	err    error
}

// callback serves the redirect URI. Only a request with this sign-in's
// state is acted upon, and only the first: anything else (a stale tab, a
// request forged by a web page) is answered with an error and does not end
// the sign-in.
type callback struct {
	state  string
	redeem func(code string) (Tokens, error)
	once   sync.Once
	result chan callbackResult
}

func (cb *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != CallbackPath {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(cb.state)) != 1 {
		http.Error(w, "This sign-in link does not belong to the running kip login.", http.StatusBadRequest)
		return
	}
	handled := false
	cb.once.Do(func() {
		handled = true
		res := cb.complete(q.Get("code"), q.Get("error"), q.Get("error_description"))
		cb.result <- res
		writePage(w, res.err)
	})
	if !handled {
		http.Error(w, "This sign-in was already completed.", http.StatusConflict)
	}
}

func (cb *callback) complete(code, errCode, errDesc string) callbackResult {
	switch {
	case errCode != "":
		return callbackResult{err: fmt.Errorf("the identity provider refused the sign-in: %s %s", errCode, errDesc)}
	case code == "":
		return callbackResult{err: fmt.Errorf("the identity provider returned no authorization code")}
	}
	t, err := cb.redeem(code)
	return callbackResult{tokens: t, err: err}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kip login</title></head>
<body style="font-family: sans-serif; margin: 3em">
{{if .}}<h1>Sign-in failed</h1><p>{{.}}</p><p>Return to your terminal for details.</p>
{{else}}<h1>Signed in</h1><p>You are signed in to kip. You can close this tab.</p>{{end}}
</body></html>
`))

func writePage(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var msg string
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		msg = err.Error()
	}
	_ = pageTemplate.Execute(w, msg)
}

// presentURL opens the sign-in URL in a browser or, with SkipBrowser or
// when no browser opens, prints it.
func (c *Client) presentURL(ctx context.Context, url string) {
	if c.cfg.SkipBrowser {
		_, _ = fmt.Fprintf(c.cfg.Stderr, "%s%s\n", SignInURLPrefix, url)
		return
	}
	open := c.cfg.OpenBrowser
	if open == nil {
		open = c.runBrowserCommand
	}
	if err := open(ctx, url); err != nil {
		_, _ = fmt.Fprintf(c.cfg.Stderr, "Could not open a browser (%v).\n%s%s\n", err, SignInURLPrefix, url)
		return
	}
	_, _ = fmt.Fprintf(c.cfg.Stderr, "Opened a browser to sign in at %s.\n", c.cfg.Issuer)
}

// runBrowserCommand starts the browser and does not wait for it: a browser
// may keep running long after the sign-in. Its output is discarded because
// kip's stdout belongs to kubectl.
func (c *Client) runBrowserCommand(_ context.Context, url string) error {
	if err := checkWebURL(url); err != nil {
		return err
	}
	cmd := browserCommand(runtime.GOOS, c.cfg.BrowserCommand, os.Getenv("BROWSER"), url)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// checkWebURL refuses to hand anything but an http or https URL to the
// system's URL handler: the sign-in URL comes from the provider's
// discovery document, and macOS' open or Windows' FileProtocolHandler
// would run a file: URL's program.
func checkWebURL(raw string) error {
	u, err := neturl.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("the sign-in URL %q is not an http(s) URL; kip does not open it", raw)
	}
	return nil
}

// browserCommand is the program that opens url on goos: the one the user
// configured, else $BROWSER, else the system's own URL handler. The URL is
// always one argument of its own and never passes through a shell, so its
// & and ? reach the browser as they are (cmd.exe's start would split it).
func browserCommand(goos, configured, browserEnv, url string) *exec.Cmd {
	switch {
	case configured != "":
		return exec.Command(configured, url)
	case browserEnv != "":
		return exec.Command(browserEnv, url)
	case goos == "darwin":
		return exec.Command("open", url)
	case goos == "windows":
		// The URL protocol handler, as Windows' own "open with the default
		// browser" does; it returns at once.
		return exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	}
	return exec.Command("xdg-open", url)
}
