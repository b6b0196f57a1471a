package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kip-proxy/kip/internal/rig/devlogin"
	"github.com/kip-proxy/kip/internal/rig/hydra"
	"github.com/kip-proxy/kip/internal/rig/jwtconfig"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// IdentityOptions configures StartIdentityProvider.
type IdentityOptions struct {
	// HydraBinary is the hydra executable, from binaries.Ensure.
	HydraBinary string
	// Dir holds the signer CA, the authentication configuration and
	// Hydra's files. It must exist.
	Dir string
	Log io.Writer
	// ClientID is the OIDC client kip's users sign in with; its ID tokens'
	// audience is what kip accepts.
	ClientID string
	// RedirectURIs are the client's allowed callbacks, such as
	// http://127.0.0.1:8000/callback for `kip login oidc`.
	RedirectURIs []string
	// ExtraAudiences are further client IDs whose ID tokens kip accepts.
	ExtraAudiences []string
	// CredentialTTL is the lifetime of exchanged certificates; zero keeps
	// kip's default.
	CredentialTTL time.Duration
	// KeepDir keeps Hydra's directory after Stop.
	KeepDir bool
}

// IdentityProvider is a real OIDC provider (Ory Hydra) with kip's dev login
// page, and the files with which `kip serve` trusts it and signs
// certificates for its users.
type IdentityProvider struct {
	Hydra *hydra.Hydra
	// LoginURL serves the dev login and consent pages Hydra sends browsers to.
	LoginURL string
	ClientID string
	// Audiences are the client IDs whose ID tokens kip accepts.
	Audiences []string
	// AuthenticationConfigFile maps Hydra's ID tokens to users: email as
	// the username, groups as groups, sub as the UID, and the issuer as
	// the extra idp.kip.dev/issuer.
	AuthenticationConfigFile string
	// SignerCACertFile and SignerCAKeyFile are kip's signer CA.
	SignerCACertFile, SignerCAKeyFile string
	SignerCAPEM                       []byte
	credentialTTL                     time.Duration
	login                             *http.Server
}

// StartIdentityProvider starts Hydra behind the dev login page, registers
// the client, and writes the signer CA and the authentication configuration.
func StartIdentityProvider(ctx context.Context, opts IdentityOptions) (_ *IdentityProvider, err error) {
	p := &IdentityProvider{ClientID: opts.ClientID, credentialTTL: opts.CredentialTTL,
		Audiences: append([]string{opts.ClientID}, opts.ExtraAudiences...)}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Stop())
		}
	}()
	// Hydra needs the login page's address before it starts, and the page
	// needs Hydra's admin API after: listen first, serve later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.LoginURL = "http://" + ln.Addr().String()
	p.Hydra, err = hydra.Start(ctx, hydra.Options{
		Binary: opts.HydraBinary, Dir: filepath.Join(opts.Dir, "hydra"), KeepDir: opts.KeepDir, Log: opts.Log,
		LoginURL: p.LoginURL + "/login", ConsentURL: p.LoginURL + "/consent",
	})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	if err := p.serveLogin(ln, opts.Log); err != nil {
		return nil, err
	}
	if _, err := p.Hydra.Admin.CreateClient(ctx, hydra.Client{ID: opts.ClientID, RedirectURIs: opts.RedirectURIs}); err != nil {
		return nil, fmt.Errorf("registering the OIDC client %s: %w", opts.ClientID, err)
	}
	if err := p.writeSigner(opts.Dir); err != nil {
		return nil, err
	}
	// The file an operator would write for this provider, the same one
	// kube-apiserver takes.
	config, err := jwtconfig.File(p.Hydra.IssuerURL, p.Audiences, p.Hydra.CAPEM)
	if err != nil {
		return nil, err
	}
	p.AuthenticationConfigFile = filepath.Join(opts.Dir, "authentication-config.yaml")
	return p, os.WriteFile(p.AuthenticationConfigFile, config, 0o600)
}

func (p *IdentityProvider) serveLogin(ln net.Listener, log io.Writer) error {
	h, err := devlogin.New(devlogin.Options{Admin: p.Hydra.Admin, IssuerURL: p.Hydra.IssuerURL, Log: log})
	if err != nil {
		_ = ln.Close()
		return err
	}
	p.login = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.login.Serve(ln) }()
	return nil
}

func (p *IdentityProvider) writeSigner(dir string) error {
	ca, err := pki.NewCA("kip dev signer CA", 30*24*time.Hour)
	if err != nil {
		return err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	p.SignerCAPEM = ca.CertPEM
	p.SignerCACertFile, p.SignerCAKeyFile, err = pki.WriteFiles(filepath.Join(dir, "signer"), "signer-ca", ca.CertPEM, keyPEM)
	return err
}

// ServeArgs are the `kip serve` flags that trust this provider and sign
// certificates with the signer CA.
func (p *IdentityProvider) ServeArgs() []string {
	args := []string{
		"--authentication-config=" + p.AuthenticationConfigFile,
		"--signer-ca-cert-file=" + p.SignerCACertFile,
		"--signer-ca-key-file=" + p.SignerCAKeyFile,
	}
	if p.credentialTTL > 0 {
		args = append(args, "--credential-ttl="+p.credentialTTL.String())
	}
	return args
}

// Stop stops the login page and Hydra.
func (p *IdentityProvider) Stop() error {
	var err error
	if p.login != nil {
		err = p.login.Close()
	}
	if p.Hydra != nil {
		err = errors.Join(err, p.Hydra.Stop())
	}
	return err
}
