package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// IDTokenKeySet is the JSON Web Key set Hydra signs ID tokens with.
const IDTokenKeySet = "hydra.openid.id-token"

// Scopes a client may ask for unless told otherwise: OIDC sign-in, refresh
// tokens, and the claims kip maps to a Kubernetes user.
var defaultScopes = []string{"openid", "offline_access", "email", "groups", "profile"}

// Grant types a client gets unless told otherwise. Hydra v2.3.0 stores a
// device_code grant type if asked but cannot serve it; see the package doc.
var defaultGrantTypes = []string{"authorization_code", "refresh_token"}

// Admin is a client of Hydra's admin API.
type Admin struct {
	// URL is the admin endpoint, such as https://127.0.0.1:4445.
	URL string
	// HTTP sends the requests. It must trust the admin endpoint's
	// certificate; nil means http.DefaultClient.
	HTTP *http.Client
}

// Client is an OAuth2 client registered with Hydra.
type Client struct {
	// ID is the client_id; empty lets Hydra choose one.
	ID string
	// Secret empty makes a public client (token_endpoint_auth_method
	// none), as a CLI such as `kip login` is: it cannot keep a secret, so
	// it must use PKCE instead.
	Secret       string
	RedirectURIs []string
	// GrantTypes defaults to authorization_code and refresh_token.
	GrantTypes []string
	// Scopes defaults to openid offline_access email groups profile.
	Scopes []string
	// Audience lists the audiences the client may request for its access
	// tokens.
	Audience []string
}

// clientJSON is Client as Hydra's API spells it.
type clientJSON struct {
	ID                      string   `json:"client_id,omitempty"`
	Secret                  string   `json:"client_secret,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
}

// CreateClient registers c and returns it as Hydra stored it, with the ID
// Hydra chose if c had none.
func (a *Admin) CreateClient(ctx context.Context, c Client) (Client, error) {
	in := clientJSON{
		ID: c.ID, Secret: c.Secret, RedirectURIs: c.RedirectURIs,
		GrantTypes:    orDefaultList(c.GrantTypes, defaultGrantTypes),
		ResponseTypes: []string{"code"},
		Scope:         strings.Join(orDefaultList(c.Scopes, defaultScopes), " "),
		Audience:      c.Audience,
		// Hydra would otherwise make up a secret for a client that has none.
		TokenEndpointAuthMethod: "client_secret_basic",
	}
	if c.Secret == "" {
		in.TokenEndpointAuthMethod = "none"
	}
	var out clientJSON
	if err := a.do(ctx, http.MethodPost, "/admin/clients", nil, in, &out); err != nil {
		return Client{}, fmt.Errorf("creating OAuth2 client %q: %w", c.ID, err)
	}
	return Client{
		ID: out.ID, Secret: out.Secret, RedirectURIs: out.RedirectURIs,
		GrantTypes: out.GrantTypes, Scopes: strings.Fields(out.Scope), Audience: out.Audience,
	}, nil
}

// LoginRequest is what Hydra knows about a sign-in it wants the login app
// to decide.
type LoginRequest struct {
	Challenge string `json:"challenge"`
	// Skip is true when Hydra already knows who the user is; the login app
	// must then accept with that Subject.
	Skip           bool     `json:"skip"`
	Subject        string   `json:"subject"`
	RequestedScope []string `json:"requested_scope"`
	Client         struct {
		ID   string `json:"client_id"`
		Name string `json:"client_name"`
	} `json:"client"`
}

// LoginRequest fetches the sign-in behind challenge. A challenge Hydra does
// not know is an error, which is how a login app tells a stale or forged
// link from a real one.
func (a *Admin) LoginRequest(ctx context.Context, challenge string) (LoginRequest, error) {
	var out LoginRequest
	if err := a.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/login", challengeQuery("login", challenge), nil, &out); err != nil {
		return LoginRequest{}, fmt.Errorf("fetching login request: %w", err)
	}
	return out, nil
}

// LoginAcceptance says who signed in.
type LoginAcceptance struct {
	Subject string `json:"subject"`
	// Context travels with the flow to the consent request, which is where
	// a login app keeps what it learnt at login (groups, for instance) for
	// the ID token it assembles at consent.
	Context any `json:"context,omitempty"`
}

// AcceptLogin tells Hydra the user behind challenge signed in, and returns
// where the browser goes next.
func (a *Admin) AcceptLogin(ctx context.Context, challenge string, acc LoginAcceptance) (redirectTo string, err error) {
	if acc.Subject == "" {
		return "", errors.New("accepting login: no subject")
	}
	var out redirect
	if err := a.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/login/accept", challengeQuery("login", challenge), acc, &out); err != nil {
		return "", fmt.Errorf("accepting login of %q: %w", acc.Subject, err)
	}
	return out.To, nil
}

// ConsentRequest is what Hydra knows about a consent it wants the consent
// app to decide.
type ConsentRequest struct {
	Challenge         string   `json:"challenge"`
	Subject           string   `json:"subject"`
	RequestedScope    []string `json:"requested_scope"`
	RequestedAudience []string `json:"requested_access_token_audience"`
	// Context is what the login app passed in LoginAcceptance.Context.
	Context json.RawMessage `json:"context"`
	Client  struct {
		ID string `json:"client_id"`
	} `json:"client"`
}

// ConsentRequest fetches the consent behind challenge.
func (a *Admin) ConsentRequest(ctx context.Context, challenge string) (ConsentRequest, error) {
	var out ConsentRequest
	if err := a.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/consent", challengeQuery("consent", challenge), nil, &out); err != nil {
		return ConsentRequest{}, fmt.Errorf("fetching consent request: %w", err)
	}
	return out, nil
}

// ConsentAcceptance says what the user consented to and what the tokens
// say about them.
type ConsentAcceptance struct {
	GrantScope    []string `json:"grant_scope"`
	GrantAudience []string `json:"grant_access_token_audience,omitempty"`
	// IDToken holds claims for the ID token (email, groups, name, …).
	IDToken map[string]any
	// AccessToken holds claims for the access token's introspection.
	AccessToken map[string]any
}

// consentJSON is ConsentAcceptance as Hydra's API spells it.
type consentJSON struct {
	GrantScope    []string `json:"grant_scope"`
	GrantAudience []string `json:"grant_access_token_audience,omitempty"`
	Session       struct {
		IDToken     map[string]any `json:"id_token,omitempty"`
		AccessToken map[string]any `json:"access_token,omitempty"`
	} `json:"session"`
}

// AcceptConsent grants what acc says for the consent behind challenge, and
// returns where the browser goes next.
func (a *Admin) AcceptConsent(ctx context.Context, challenge string, acc ConsentAcceptance) (redirectTo string, err error) {
	in := consentJSON{GrantScope: acc.GrantScope, GrantAudience: acc.GrantAudience}
	in.Session.IDToken, in.Session.AccessToken = acc.IDToken, acc.AccessToken
	var out redirect
	if err := a.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept", challengeQuery("consent", challenge), in, &out); err != nil {
		return "", fmt.Errorf("accepting consent: %w", err)
	}
	return out.To, nil
}

// RotateSigningKey adds a new RSA key to the ID-token key set and returns
// its key ID. Hydra signs with the newest private key of the set, so every
// ID token issued afterwards carries the new kid, while the older public
// keys stay in /.well-known/jwks.json and tokens signed with them still
// verify: a rotation, not a revocation.
func (a *Admin) RotateSigningKey(ctx context.Context) (kid string, err error) {
	if kid, err = newKeyID(); err != nil {
		return "", err
	}
	in := map[string]string{"alg": "RS256", "use": "sig", "kid": kid}
	var out struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := a.do(ctx, http.MethodPost, "/admin/keys/"+IDTokenKeySet, nil, in, &out); err != nil {
		return "", fmt.Errorf("rotating the ID-token signing key: %w", err)
	}
	if len(out.Keys) == 0 || out.Keys[0].KID != kid {
		return "", fmt.Errorf("rotating the ID-token signing key: Hydra answered with keys %+v, not the new %s", out.Keys, kid)
	}
	return kid, nil
}

// redirect is Hydra's answer to an accepted login or consent.
type redirect struct {
	To string `json:"redirect_to"`
}

// challengeQuery carries a login or consent challenge. It is passed as a
// query parameter, escaped, so a hostile challenge cannot add others.
func challengeQuery(kind, challenge string) url.Values {
	return url.Values{kind + "_challenge": {challenge}}
}

// do sends one request to the admin API: in, if not nil, as the JSON body,
// and the JSON answer decoded into out.
func (a *Admin) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	req, err := a.newRequest(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	client := a.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading Hydra's answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: Hydra answered %s: %s", method, path, resp.Status, errorMessage(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding Hydra's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (a *Admin) newRequest(ctx context.Context, method, path string, query url.Values, in any) (*http.Request, error) {
	u, err := url.Parse(a.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the admin URL %q: %w", a.URL, err)
	}
	u = u.JoinPath(path)
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// errorMessage pulls the readable part out of an admin API error, which
// comes either as an OAuth2 error or as Ory's generic error object.
func errorMessage(body []byte) string {
	var e struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 {
		return truncate(string(body), 500)
	}
	var generic struct {
		Message string `json:"message"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(e.Error, &generic) == nil && generic.Message != "" {
		return strings.TrimSuffix(generic.Message+"; "+generic.Reason, "; ")
	}
	var code string
	_ = json.Unmarshal(e.Error, &code)
	return strings.TrimSuffix(code+": "+e.ErrorDescription, ": ")
}

// newKeyID names a rotated key; random, so two rotations never clash.
func newKeyID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a key ID: %w", err)
	}
	return "kip-" + hex.EncodeToString(b), nil
}

func orDefaultList(l, def []string) []string {
	if len(l) > 0 {
		return l
	}
	return def
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
