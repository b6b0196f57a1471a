package deviceop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// answer walks the verification pages as a browser submits their forms:
// the code form, the sign-in form, then the consent form's action button.
func (p *Provider) answer(ctx context.Context, verificationURL, userCode, username, password, action string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	b := &browser{client: p.HTTPClient()}
	b.client.Jar = jar
	pg, err := b.open(ctx, http.MethodGet, verificationURL, nil)
	if err != nil {
		return err
	}
	f, err := pg.form("code")
	if err != nil {
		return err
	}
	// A person compares a prefilled code with the device's before going on.
	if shown := f.fields.Get("user_code"); shown != "" && shown != userCode {
		return fmt.Errorf("the verification page shows the code %q, but the device showed %q", shown, userCode)
	}
	f.fields.Set("user_code", userCode)
	if pg, err = b.submit(ctx, f); err != nil {
		return err
	}
	if f, err = pg.form("login"); err != nil {
		return err
	}
	f.fields.Set("username", username)
	f.fields.Set("password", password)
	if pg, err = b.submit(ctx, f); err != nil {
		return err
	}
	if f, err = pg.form("consent"); err != nil {
		return err
	}
	f.fields.Set("action", action) // the button pressed
	if pg, err = b.submit(ctx, f); err != nil {
		return err
	}
	if !pg.has("done") {
		return fmt.Errorf("the provider did not take the answer: %s", pg.errorText())
	}
	return nil
}

type browser struct {
	client *http.Client
}

// page is a parsed HTML page and the URL it came from.
type page struct {
	url  *url.URL
	root *html.Node
}

// form is what a browser would submit: the resolved action, the method
// and the fields with their current values.
type form struct {
	method string
	action *url.URL
	fields url.Values
}

func (b *browser) open(ctx context.Context, method, target string, body url.Values) (*page, error) {
	var r io.Reader
	if body != nil {
		r = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	root, err := html.Parse(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	return &page{url: resp.Request.URL, root: root}, nil
}

func (b *browser) submit(ctx context.Context, f *form) (*page, error) {
	return b.open(ctx, f.method, f.action.String(), f.fields)
}

// form finds the form with id; when it is missing, the page's error line
// says why.
func (pg *page) form(id string) (*form, error) {
	n := find(pg.root, func(n *html.Node) bool { return n.Data == "form" && attr(n, "id") == id })
	if n == nil {
		return nil, fmt.Errorf("the provider's page at %s has no %s form: %s", pg.url, id, pg.errorText())
	}
	action, err := pg.url.Parse(attr(n, "action"))
	if err != nil {
		return nil, err
	}
	f := &form{method: strings.ToUpper(attr(n, "method")), action: action, fields: url.Values{}}
	if f.method == "" {
		f.method = http.MethodGet
	}
	walk(n, func(in *html.Node) {
		if in.Data == "input" && attr(in, "name") != "" {
			f.fields.Set(attr(in, "name"), attr(in, "value"))
		}
	})
	return f, nil
}

func (pg *page) has(id string) bool {
	return find(pg.root, func(n *html.Node) bool { return attr(n, "id") == id }) != nil
}

func (pg *page) errorText() string {
	n := find(pg.root, func(n *html.Node) bool { return n.Data == "p" && attr(n, "class") == "error" })
	if n == nil {
		return "no error shown"
	}
	return text(n)
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(n, func(c *html.Node) {
		if found == nil && c.Type == html.ElementNode && match(c) {
			found = c
		}
	})
	return found
}

func walk(n *html.Node, visit func(*html.Node)) {
	visit(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, visit)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var sb strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			sb.WriteString(c.Data)
		}
	})
	return strings.TrimSpace(sb.String())
}
