package devlogin

import (
	"bytes"
	"html/template"
	"net/http"
)

// The app's pages: a shared layout, and the content of each page. The
// templates are parsed once and only ever executed. html/template escapes
// everything that comes from a request or from Hydra, by where it lands.
var (
	loginPage   = withContent(loginHTML)
	failurePage = withContent(failureHTML)
)

const layoutHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kip dev · {{.Title}}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 8px;
         padding: 2rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  p.lead { color: #5a6272; margin: 0 0 1.5rem; }
  label { display: block; font-weight: 600; margin: 1rem 0 .3rem; }
  input[type=text] { width: 100%; box-sizing: border-box; padding: .55rem .6rem;
         border: 1px solid #c4c9d4; border-radius: 4px; font-size: 1rem; }
  small { color: #5a6272; }
  button { margin-top: 1.5rem; width: 100%; padding: .65rem; font-size: 1rem; font-weight: 600;
           color: #fff; background: #2457c5; border: 0; border-radius: 4px; cursor: pointer; }
  .error { background: #fdecea; color: #8a1c12; border-radius: 4px; padding: .6rem .8rem; margin-bottom: 1rem; }
  code { background: #f0f1f4; padding: 0 .25rem; border-radius: 3px; }
</style>
</head>
<body><main>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{template "content" .}}
</main></body>
</html>
`

const loginHTML = `{{define "content"}}
<h1>Sign in to kip dev</h1>
<p class="lead">{{with .Client}}<code>{{.}}</code> asks who you are. {{end}}No password: pick any user and groups to try kip as.</p>
<form method="post" action="login">
  <input type="hidden" name="challenge" value="{{.Challenge}}">
  <label for="username">User name</label>
  <input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autofocus required>
  <label for="groups">Groups</label>
  <input type="text" id="groups" name="groups" value="{{.Groups}}" placeholder="developers, on-call">
  <small>Comma-separated; may be empty.</small>
  <button type="submit" id="accept">Accept</button>
</form>
{{end}}`

const failureHTML = `{{define "content"}}
<h1>Sign-in failed</h1>
<p class="lead">Start again from <code>kip login</code>.</p>
{{end}}`

// withContent is the layout with content filled in.
func withContent(content string) *template.Template {
	layout := template.Must(template.New("layout").Parse(layoutHTML))
	return template.Must(layout.Parse(content))
}

// page is what a template shows.
type page struct {
	Title string
	Error string
	// The login form's fields.
	Challenge, Client, Username, Groups string
}

// render writes page t with the headers every page carries.
func render(w http.ResponseWriter, status int, t *template.Template, p page) {
	// Rendered in full before anything is sent, so that a failure still
	// gets an honest status code.
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The pages need no scripts, frames or outside resources; saying so
	// limits what an injected fragment could do. form-action is left
	// open because the form's answer redirects to Hydra.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	// The URL carries a challenge; keep it out of caches and Referer.
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
