package hydra

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

const (
	// readyTimeout bounds start-up; Hydra is ready in a second or two, so
	// hitting it means something is wrong.
	readyTimeout = 30 * time.Second
	// stopGrace is how long Hydra gets to exit after SIGTERM.
	stopGrace = 5 * time.Second
	// certValidity outlasts any test run or `kip dev` session.
	certValidity = 7 * 24 * time.Hour
)

// Options configures Start.
type Options struct {
	// Binary is the hydra executable, from binaries.Ensure.
	Binary string
	// Dir holds the configuration, certificates and Hydra's log. Empty
	// means a new temporary directory. Stop removes it unless KeepDir.
	Dir string
	// KeepDir leaves Dir in place after Stop, for reading the log.
	KeepDir bool
	// Log receives progress lines. Nil discards them.
	Log io.Writer
	// LoginURL and ConsentURL are the login and consent app Hydra sends
	// browsers to, with a login_challenge or consent_challenge. Empty
	// leaves Hydra's error pages there, which is enough for SignIn.
	LoginURL, ConsentURL string
	// Token lifespans; zero means 15 minutes for access and ID tokens and
	// a day for refresh tokens.
	AccessTokenLifespan, IDTokenLifespan, RefreshTokenLifespan time.Duration
}

// Hydra is a running Hydra. Its methods are safe for concurrent use.
type Hydra struct {
	// IssuerURL is the public endpoint and the OIDC issuer, such as
	// https://127.0.0.1:4444, without a trailing slash, exactly as the
	// tokens' iss claim says it.
	IssuerURL string
	// AdminURL is the admin endpoint, such as https://127.0.0.1:4445.
	AdminURL string
	// CAPEM verifies the certificate of both endpoints.
	CAPEM []byte
	// Dir holds the configuration, certificates and hydra.log.
	Dir string
	// Admin speaks the admin API at AdminURL, trusting CAPEM.
	Admin *Admin

	log     io.Writer
	keepDir bool
	// transport trusts CAPEM; HTTPClient and SignIn share it.
	transport *http.Transport

	mu   sync.Mutex // guards proc
	proc *childproc.Process
}

// Start runs Hydra on free loopback ports and returns once both its
// endpoints are ready. ctx bounds the start-up only; Hydra runs until
// Stop. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Hydra, err error) {
	if opts.Binary == "" {
		return nil, errors.New("starting Hydra: no binary given; binaries.Ensure builds one")
	}
	h := &Hydra{log: opts.Log, keepDir: opts.KeepDir}
	if h.log == nil {
		h.log = io.Discard
	}
	if h.Dir, err = makeDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Stop())
		}
	}()

	configPath, err := h.prepare(opts)
	if err != nil {
		return nil, err
	}
	if err := h.run(ctx, opts.Binary, configPath); err != nil {
		return nil, err
	}
	return h, nil
}

// prepare picks ports, issues the serving certificate and writes the
// configuration, returning its path.
func (h *Hydra) prepare(opts Options) (configPath string, err error) {
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		return "", err
	}
	s := serveConfig{publicPort: ports[0], adminPort: ports[1]}
	if s.systemSecret, err = newSystemSecret(); err != nil {
		return "", err
	}
	if s.certFile, s.keyFile, err = h.issueServingCert(); err != nil {
		return "", err
	}
	h.IssuerURL = issuerURL(s.publicPort)
	h.transport = &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	h.transport.TLSClientConfig.RootCAs.AppendCertsFromPEM(h.CAPEM)
	h.AdminURL = adminURL(s.adminPort)
	h.Admin = &Admin{URL: h.AdminURL, HTTP: h.HTTPClient()}

	configPath = filepath.Join(h.Dir, "hydra.json")
	return configPath, writeConfig(configPath, config(opts, s))
}

// issueServingCert makes a CA of Hydra's own and a certificate for
// 127.0.0.1 from it. A CA of its own, rather than a self-signed leaf, is
// what a real provider looks like to kip: a trust root configured apart
// from the issuer.
func (h *Hydra) issueServingCert() (certFile, keyFile string, err error) {
	ca, err := pki.NewCA("kip test Hydra CA", certValidity)
	if err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1"}, certValidity)
	if err != nil {
		return "", "", err
	}
	h.CAPEM = ca.CertPEM
	dir := filepath.Join(h.Dir, "pki")
	if _, _, err := pki.WriteFiles(dir, "ca", ca.CertPEM, nil); err != nil {
		return "", "", err
	}
	return pki.WriteFiles(dir, "serving", certPEM, keyPEM)
}

// run starts `hydra serve all` and waits until it is ready.
func (h *Hydra) run(ctx context.Context, binary, configPath string) error {
	_, _ = fmt.Fprintf(h.log, "starting Hydra on %s (admin %s)\n", h.IssuerURL, h.AdminURL)
	start := time.Now()
	// --dev allows the loopback issuer; --sqa-opt-out keeps Hydra from
	// trying to send usage statistics out of a machine that has no network.
	args := []string{"serve", "all", "--dev", "--sqa-opt-out", "-c", configPath}
	p, err := childproc.Start("hydra", binary, args, nil, filepath.Join(h.Dir, "hydra.log"))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.proc = p
	h.mu.Unlock()

	if err := p.WaitReady(ctx, readyTimeout, h.ready); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(h.log, "Hydra ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// ready succeeds once both endpoints answer their readiness check over TLS
// with the certificate Start issued.
func (h *Hydra) ready(ctx context.Context) error {
	client := h.HTTPClient()
	for _, base := range []string{h.IssuerURL, h.AdminURL} {
		if err := childproc.GetOK(ctx, client, base+"/health/ready"); err != nil {
			return err
		}
	}
	return nil
}

// HTTPClient returns a client that trusts CAPEM, for OAuth2 and OIDC
// libraries talking to the issuer. It follows redirects as any client does.
func (h *Hydra) HTTPClient() *http.Client { return &http.Client{Transport: h.transport} }

// Stop stops Hydra and removes Dir unless KeepDir was set. It is safe to
// call more than once.
func (h *Hydra) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	if h.proc != nil {
		err = h.proc.Stop(stopGrace)
		h.proc = nil
		_, _ = fmt.Fprintln(h.log, "stopped Hydra")
	}
	if h.transport != nil {
		h.transport.CloseIdleConnections()
	}
	if h.keepDir {
		_, _ = fmt.Fprintf(h.log, "keeping %s\n", h.Dir)
		return err
	}
	return errors.Join(err, os.RemoveAll(h.Dir))
}

func makeDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "kip-hydra-")
	}
	// Owner-only: the directory holds a CA key and the system secret.
	return dir, os.MkdirAll(dir, 0o700)
}
