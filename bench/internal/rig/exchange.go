package rig

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/hydra"
	"github.com/kip-proxy/kip/internal/rig/tokenwebhook"
)

const (
	// OIDCUser is the email claim of the ID tokens the benchmark signs in
	// for, which kip's authentication configuration makes the username.
	OIDCUser = "kip-bench@example.com"
	// oidcClientID is the OIDC client the benchmark signs in with, as
	// `kip login` would with its own.
	oidcClientID = "kip-bench"
	// oidcCallback is registered with Hydra but never visited: Hydra's
	// redirect to it carries the code, which is all the benchmark needs.
	oidcCallback = "http://127.0.0.1/kip-bench/callback"
)

// Exchange is a kip that serves the credential exchange, with the token
// sources it trusts: Ory Hydra as an OIDC provider, and a TokenReview
// webhook inside the benchmark process. kip runs as a process of its own,
// beside the rig's kip, so that all of its CPU time is the exchange's.
type Exchange struct {
	// URL is kip's address, PID its process.
	URL string
	PID int
	// SignerCAPEM is the CA kip signs the certificates with.
	SignerCAPEM []byte
	// Setup describes how it runs, for the report.
	Setup []string

	kipCAPEM []byte
	idp      *devstack.IdentityProvider
	webhook  *tokenwebhook.Webhook
	procs    group
}

// StartExchange starts Hydra, the token webhook and a kip that trusts both
// and signs with a signer CA of its own, and returns once kip is ready,
// which includes having fetched Hydra's keys. Stop it after the workload.
func (r *Rig) StartExchange(ctx context.Context) (_ *Exchange, err error) {
	dir := r.path("exchange")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &Exchange{kipCAPEM: r.Stack.KipCAPEM}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	// The identity provider also writes kip's signer CA (made with
	// internal/pki) and the AuthenticationConfiguration that trusts Hydra.
	e.idp, err = devstack.StartIdentityProvider(ctx, devstack.IdentityOptions{
		HydraBinary: r.Stack.Binaries.Hydra, Dir: dir, Log: r.opts.Log, KeepDir: true,
		ClientID: oidcClientID, RedirectURIs: []string{oidcCallback},
	})
	if err != nil {
		return nil, err
	}
	e.SignerCAPEM = e.idp.SignerCAPEM
	var webhookKubeconfig string
	if e.webhook, webhookKubeconfig, err = startTokenWebhook(dir); err != nil {
		return nil, err
	}
	args := append(e.idp.ServeArgs(), "--authentication-token-webhook-config-file="+webhookKubeconfig)
	kip, probe, err := r.startKip(ctx, &e.procs, "kip-exchange", r.Stack.UpstreamKubeconfig, args)
	if err != nil {
		return nil, err
	}
	e.URL, e.PID = kip.URL, kip.PID
	e.Setup = []string{fmt.Sprintf("kip: a `kip serve` process of its own (pid %d) with a signer CA (ECDSA P-256, from files), "+
		"--authentication-config trusting Ory Hydra %s, and --authentication-token-webhook-config-file naming a TokenReview webhook "+
		"in the benchmark process on loopback TLS (default cache TTL, 2m); extra flags %v, environment %v. Clients send no client certificate, over HTTP/2",
		kip.PID, binaries.HydraVersion, r.opts.KipFlags, r.opts.KipEnv)}
	return e, waitOK(ctx, probe+"/readyz")
}

// NewTarget returns a client of kip's exchange with no client
// certificate: the exchange is for callers that have none yet. Each
// exchange has a connection of its own, as each `kip login` process has.
// kip ends an exchange's HTTP/2 connection once it has answered; workers
// sharing one would race that end, and a request refused by the GOAWAY
// waits out Go's retry backoff (1 s, then 2 s), which measures the client.
func (e *Exchange) NewTarget(name string) (*load.Target, error) {
	tlsConfig, err := rest.TLSConfigFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: e.kipCAPEM}})
	if err != nil {
		return nil, err
	}
	t := load.NewTarget(name, e.URL, tlsConfig, e.PID)
	t.OneRequestPerConnection()
	return t, nil
}

// IDToken signs in at Hydra as OIDCUser through the authorization code
// flow with PKCE, as `kip login oidc` does with a browser, and returns the
// ID token.
func (e *Exchange) IDToken(ctx context.Context) (string, error) {
	who := hydra.Person{Subject: "kip-bench-sub", Claims: map[string]any{"email": OIDCUser, "groups": []string{"kip-bench-users"}}}
	return e.idp.Hydra.IDToken(ctx, oidcClientID, oidcCallback, who, "email", "groups")
}

// WebhookReviews is how many TokenReviews the webhook has answered.
func (e *Exchange) WebhookReviews() int64 { return int64(e.webhook.Reviews()) }

// Stop stops kip, the webhook and Hydra.
func (e *Exchange) Stop() error {
	err := e.procs.stop()
	if e.webhook != nil {
		e.webhook.Close()
	}
	if e.idp != nil {
		err = errors.Join(err, e.idp.Stop())
	}
	return err
}

// waitOK polls url until it answers 200.
func waitOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := childproc.GetOK(ctx, http.DefaultClient, url)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (last error: %v): %w", url, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
