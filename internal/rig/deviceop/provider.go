package deviceop

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/kip-proxy/kip/internal/rig/jwtconfig"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// ScopeGroups asks for the groups claim, as kip login does by default.
const ScopeGroups = "groups"

// User is a person who can sign in.
type User struct {
	// Subject is the sub claim; Username and Password sign in on the
	// verification pages.
	Subject, Username, Password string
	// Email is the email claim (with the email scope), always verified.
	Email string
	// Groups is the groups claim (with the groups scope).
	Groups []string
}

// Options configures Start.
type Options struct {
	// ClientID is the public client kip login signs in with.
	ClientID string
	Users    []User
	// IDTokenLifetime is an hour when zero.
	IDTokenLifetime time.Duration
	// CodeLifetime is how long a user code can be answered; five minutes
	// when zero.
	CodeLifetime time.Duration
	// PollInterval is the interval the device is told to poll at; a
	// second when zero.
	PollInterval time.Duration
}

// Provider is a running OpenID provider. Its methods are safe for
// concurrent use.
type Provider struct {
	// IssuerURL is the issuer and base URL, https://127.0.0.1:<port>.
	IssuerURL string
	// CAPEM verifies the provider's serving certificate.
	CAPEM    []byte
	ClientID string

	store *storage
	srv   *http.Server
	pool  *x509.CertPool
}

// Start runs the provider on a loopback port until Stop.
func Start(opts Options) (_ *Provider, err error) {
	if opts.ClientID == "" {
		return nil, errors.New("deviceop: Options.ClientID is empty")
	}
	opts = withDefaults(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	p := &Provider{IssuerURL: "https://" + ln.Addr().String(), ClientID: opts.ClientID}
	tlsConfig, err := p.serving()
	if err != nil {
		return nil, err
	}
	p.store, err = newStorage(&publicClient{id: opts.ClientID, idTokenLifetime: opts.IDTokenLifetime}, opts.Users)
	if err != nil {
		return nil, err
	}
	h, err := p.handler(opts)
	if err != nil {
		return nil, err
	}
	p.srv = &http.Server{Handler: h, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.ServeTLS(ln, "", "") }()
	return p, nil
}

func withDefaults(opts Options) Options {
	if opts.IDTokenLifetime == 0 {
		opts.IDTokenLifetime = time.Hour
	}
	if opts.CodeLifetime == 0 {
		opts.CodeLifetime = 5 * time.Minute
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	return opts
}

// serving makes a CA of the provider's own and a certificate for its
// loopback address.
func (p *Provider) serving() (*tls.Config, error) {
	ca, err := pki.NewCA("kip test device-flow provider CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	p.CAPEM = ca.CertPEM
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// handler is zitadel's OP with the verification pages beside it.
func (p *Provider) handler(opts Options) (http.Handler, error) {
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:]) // crypto/rand.Read never fails
	config := &op.Config{
		CryptoKey:             cryptoKey,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       []string{"openid", "offline_access", "email", "profile", ScopeGroups},
		SupportedClaims:       []string{"sub", "iss", "aud", "exp", "iat", "email", "email_verified", "groups"},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     opts.CodeLifetime,
			PollInterval: opts.PollInterval,
			UserFormPath: verificationPath,
			UserCode:     op.UserCodeBase20,
		},
	}
	provider, err := op.NewProvider(config, p.store, op.StaticIssuer(p.IssuerURL))
	if err != nil {
		return nil, fmt.Errorf("deviceop: starting the OpenID provider: %w", err)
	}
	mux := http.NewServeMux()
	(&pages{store: p.store}).routes(mux)
	mux.Handle("/", provider)
	return mux, nil
}

// Stop closes the listener and every connection.
func (p *Provider) Stop() error {
	return p.srv.Close()
}

// HTTPClient trusts the provider's CA, as a browser with it installed
// would; it has no cookie jar.
func (p *Provider) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}},
		Timeout:   30 * time.Second,
	}
}

// Grants says what the provider has done so far.
func (p *Provider) Grants() Grants {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.grants
}

// AuthenticationConfig is the AuthenticationConfiguration (the file
// kube-apiserver and kip take) that trusts this provider for its client,
// with the claim mappings the rig uses for Hydra.
func (p *Provider) AuthenticationConfig() ([]byte, error) {
	return jwtconfig.File(p.IssuerURL, []string{p.ClientID}, p.CAPEM)
}

// Approve plays the person who opens verificationURL, checks that it
// shows userCode (or types it in), signs in as username and allows the
// device.
func (p *Provider) Approve(ctx context.Context, verificationURL, userCode, username, password string) error {
	return p.answer(ctx, verificationURL, userCode, username, password, "allow")
}

// Deny is Approve with Deny pressed instead of Allow.
func (p *Provider) Deny(ctx context.Context, verificationURL, userCode, username, password string) error {
	return p.answer(ctx, verificationURL, userCode, username, password, "deny")
}
