package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/authn"
	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/revocation"
	"github.com/kip-proxy/kip/internal/signer"
	"github.com/kip-proxy/kip/internal/tokenauth"
)

// CredentialsConfig says which credentials kip verifies itself: its own
// certificates, OIDC and webhook tokens, and the exchange between them.
type CredentialsConfig struct {
	// SignerCACertFile and SignerCAKeyFile hold the signer CA out of
	// cluster; SignerCASecret names the Secret that holds it in cluster.
	// All empty: kip issues no certificates.
	SignerCACertFile, SignerCAKeyFile string
	SignerCASecret                    types.NamespacedName
	// SignerCALeaderElection chooses the replica that rotates the CA in
	// SignerCASecret; zero values take the signer's defaults.
	SignerCALeaderElection signer.LeaderElection
	// CredentialTTL is the lifetime of an exchanged certificate.
	CredentialTTL time.Duration
	// Tokens names kip's own token verifiers.
	Tokens tokenauth.Config
	// Revocations names the ConfigMap of the revocation list on the home
	// cluster; empty: kip follows none.
	Revocations types.NamespacedName
	// FailedAuthentication bounds what bearer tokens kip cannot verify
	// may cost, kip-wide: every cluster's authenticator shares it.
	FailedAuthentication authlimit.Config
}

// kipCredentials are the verifiers of those credentials, built from
// CredentialsConfig.
type kipCredentials struct {
	signer   *signer.CA          // nil without a signer CA
	tokens   *tokenauth.Verifier // nil without OIDC or webhook tokens
	exchange http.Handler        // nil unless both are configured
	// revoked refuses what the revocation list revokes, read from
	// revocations; both nil without a list.
	revoked     *revocation.Guard
	revocations *revocationFollower
	// running are the long-running requests that a revocation, or kip
	// ceasing to trust a client CA, ends.
	running *revocation.Running
	// ended counts the requests running ended.
	ended func(reason string)
	// ownName is kip's own upstream username, learned from the upstream;
	// no identity kip impersonates may take it. Nil in a gateway, where
	// each cluster learns kip's name there.
	ownName *caller.KipName
	client  kubernetes.Interface
	// limits bound failed authentication for every authenticator kip
	// builds, and the chain's budget per address.
	limits *authlimit.Limits
}

// newCredentials builds the signer CA, the token verifiers and, when kip has
// both, the credential exchange, which count into rec. ctx bounds their
// background work. reserved says which usernames no identity may take; nil
// means kip's own name at its one upstream, learned from client.
func newCredentials(ctx context.Context, cfg CredentialsConfig, client kubernetes.Interface, rec *metrics.Recorder, reserved func(string) string) (*kipCredentials, error) {
	id := &kipCredentials{client: client, limits: authlimit.New(cfg.FailedAuthentication, rec.AuthLimits())}
	if reserved == nil {
		id.ownName = &caller.KipName{}
		reserved = id.ownName.Reason
	}
	var err error
	if id.signer, err = newSigner(ctx, cfg, client); err != nil {
		return nil, err
	}
	id.running, id.ended = &revocation.Running{}, rec.LongRunningEnds().Ended
	if id.revoked, id.revocations, err = newRevocations(cfg.Revocations, client, id.running, rec); err != nil {
		return nil, err
	}
	// OIDC and webhook identities are checked here too, so that the
	// exchange never signs a certificate for kip's own name.
	cfg.Tokens.RefusedUsername = reserved
	cfg.Tokens.Metrics = rec
	cfg.Tokens.Limits = id.limits
	if id.tokens, err = tokenauth.New(ctx, cfg.Tokens); err != nil {
		return nil, err
	}
	if id.signer != nil && id.tokens != nil {
		id.exchange, err = exchange.New(exchange.Config{Tokens: id.vouchedTokens(), Issuer: id.signer, TTL: cfg.CredentialTTL, Outcomes: rec})
		if err != nil {
			return nil, err
		}
	}
	return id, nil
}

func newSigner(ctx context.Context, cfg CredentialsConfig, client kubernetes.Interface) (*signer.CA, error) {
	// A retired CA stays trusted for as long as the longest certificate it
	// could have signed.
	opts := signer.Options{MaxCertificateTTL: cfg.CredentialTTL, LeaderElection: cfg.SignerCALeaderElection}
	switch {
	case cfg.SignerCACertFile != "":
		ca, err := signer.NewFromFiles(cfg.SignerCACertFile, cfg.SignerCAKeyFile, opts)
		if err != nil {
			return nil, fmt.Errorf("loading the signer CA: %w", err)
		}
		return ca, nil
	case cfg.SignerCASecret.Name != "" && client == nil:
		return nil, fmt.Errorf("the signer CA Secret %s needs a home cluster to read it from: give --kubeconfig or run in a cluster", cfg.SignerCASecret)
	case cfg.SignerCASecret.Name != "":
		ca, err := signer.NewFromSecret(ctx, client, cfg.SignerCASecret.Namespace, cfg.SignerCASecret.Name, opts)
		if err != nil {
			return nil, fmt.Errorf("loading the signer CA from Secret %s: %w", cfg.SignerCASecret, err)
		}
		return ca, nil
	}
	return nil, nil
}

// readiness fails while kip's own upstream username is unknown, the signer
// CA has not loaded, or an OIDC issuer kip trusts has not been reached
// (discovery and first keys): until then every identity kip impersonates,
// kip's own certificates, or that issuer's tokens, would be refused.
func (id *kipCredentials) readiness() []healthz.HealthChecker {
	var checks []healthz.HealthChecker
	if id.ownName != nil {
		checks = append(checks, healthz.NamedCheck("own-upstream-name", id.ownName.Check))
	}
	if id.signer != nil {
		checks = append(checks, caLoaded("signer-ca", id.signer))
	}
	if id.tokens != nil {
		checks = append(checks, healthz.NamedCheck("oidc-issuers", func(*http.Request) error { return id.tokens.HealthCheck() }))
	}
	if id.revoked != nil {
		checks = append(checks, healthz.NamedCheck("revocation-list", id.revoked.Ready))
	}
	return checks
}

// signerCA is the signer as a CA provider, or nil without one (not an
// interface holding a nil pointer).
func (id *kipCredentials) signerCA() dynamiccertificates.CAContentProvider {
	if id.signer == nil {
		return nil
	}
	return id.signer
}

// kipWide adds to c what kip verifies itself, the same at every cluster:
// certificates its signer issued, and OIDC and webhook tokens; and the
// limits on failed authentication, which are kip's, not a cluster's.
func (id *kipCredentials) kipWide(c *authn.Config) {
	c.Limits = id.limits
	if id.signer != nil {
		c.SignerCA, c.SignerCertificates = id.signer, signer.NewAuthenticator(id.signer)
	}
	if id.tokens != nil {
		c.KipTokens = id.vouchedTokens()
	}
	c.Revocations = id.revoked
}

// vouchedTokens are kip's own token verifiers, behind the revocation list
// when kip has one: the proxy and the exchange both ask them.
func (id *kipCredentials) vouchedTokens() authenticator.Token {
	return id.revoked.Tokens(id.tokens)
}

// refuseKipName wraps kip's request authenticator so that no identity kip
// would impersonate takes kip's own upstream username.
func (id *kipCredentials) refuseKipName(auth authenticator.Request) authenticator.Request {
	return caller.RefuseKipName(id.ownName, auth)
}

// run learns kip's own upstream username and keeps the token configuration
// current until ctx ends. The signer CA reloads through the generic
// server's CA controllers.
func (id *kipCredentials) run(ctx context.Context) {
	// Quick retries at first, since kip is not ready until it knows its
	// name; then at most one question every 30 s.
	if id.ownName != nil {
		go id.ownName.Learn(ctx, id.client.AuthenticationV1(), 250*time.Millisecond, 30*time.Second)
	}
	if id.tokens != nil {
		go id.tokens.Run(ctx)
	}
	if id.revocations != nil {
		go id.revocations.follow(ctx)
	}
}

// revocationFollower keeps a revocation list current, and ends the
// running requests of the subjects it revokes.
type revocationFollower struct {
	source  revocation.Source
	list    *revocation.List
	metrics *metrics.Revocations
}

// newRevocations builds the guard of the revocation list named by cm, and
// what follows it; both nil without one. The list ends requests of running.
func newRevocations(cm types.NamespacedName, client kubernetes.Interface, running *revocation.Running, rec *metrics.Recorder) (*revocation.Guard, *revocationFollower, error) {
	if cm.Name == "" {
		return nil, nil, nil
	}
	if client == nil {
		return nil, nil, fmt.Errorf("the revocation list %s needs a home cluster to read it from: give --kubeconfig or run in a cluster", cm)
	}
	f := &revocationFollower{
		source:  revocation.Source{Client: client, Namespace: cm.Namespace, Name: cm.Name},
		list:    revocation.NewList(running),
		metrics: rec.Revocations(),
	}
	return revocation.NewGuard(f.list, f.metrics), f, nil
}

func (f *revocationFollower) follow(ctx context.Context) {
	f.source.Follow(ctx, f.list, f.metrics)
}

// layers are the chain's steps for kip's own credentials.
func (id *kipCredentials) layers() credentialLayers {
	return credentialLayers{exchange: id.exchange, budget: id.limits.Budget, running: id.running, runningEnded: id.ended}
}
