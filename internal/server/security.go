package server

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/authn"
	"github.com/kip-proxy/kip/internal/authz"
	"github.com/kip-proxy/kip/internal/metrics"
)

// security is everything that decides who may use kip, each piece built
// once by newSecurity. build hands it to the generic server in one place
// and then checks, with checkWired, that the server kept exactly it.
type security struct {
	// authenticator decides who a caller is. No identity kip impersonates
	// may take kip's own upstream name.
	authenticator *kipAuthenticator
	// authorizer decides what the caller may do: the upstream's
	// SubjectAccessReview, behind kip's own refusals.
	authorizer *kipAuthorizer
	// cas are the CAs trusted for client certificates.
	cas clientCAs
	// credentials are what kip verifies itself: its signer CA, its token
	// verifiers, the credential exchange and its own upstream name.
	credentials *kipCredentials
}

// kipAuthenticator and kipAuthorizer give kip's authenticator and
// authorizer an identity of their own: the values k8s.io/apiserver builds
// are funcs, which cannot be compared, and checkWired must tell the one
// kip built from anything that wrapped or replaced it.
type (
	kipAuthenticator struct{ authenticator.Request }
	kipAuthorizer    struct{ authorizer.Authorizer }
)

// clientCAs are the CAs kip trusts for client certificates, as each user
// needs them, all made from the same sources.
type clientCAs struct {
	// subject are the sources trusted for a certificate's subject
	// (--client-ca-file, the cluster's client CA), one by one, so that
	// readiness can name the one that has not loaded.
	subject []dynamiccertificates.CAContentProvider
	// subjectUnion is their union, as the authenticator reads it.
	subjectUnion dynamiccertificates.CAContentProvider
	// signer is kip's signer CA, or nil without one.
	signer dynamiccertificates.CAContentProvider
	// handshake is the union of all of them: the CAs named in the TLS
	// handshake. The generic server runs its controllers, the signer's
	// among them, and reloads the handshake's list from it.
	handshake dynamiccertificates.CAContentProvider
}

// newSecurity builds what kip verifies itself, the client CAs, the request
// authenticator and the authorizer. ctx bounds the credential verifiers'
// background work; rec counts what they decide.
func newSecurity(ctx context.Context, cfg Config, client kubernetes.Interface, rec *metrics.Recorder) (*security, error) {
	id, err := newCredentials(ctx, cfg.Credentials, client, rec, nil)
	if err != nil {
		return nil, err
	}
	cas, err := newClientCAs(cfg, client, id.signerCA())
	if err != nil {
		return nil, err
	}
	authenticator, err := newAuthenticator(cfg, client, id, cas.subjectUnion, rec)
	if err != nil {
		return nil, err
	}
	authorizer, err := authz.New(authz.Config{
		SubjectAccessReview: client.AuthorizationV1(),
		AllowCacheTTL:       10 * time.Second,
		DenyCacheTTL:        5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return &security{authenticator: authenticator, authorizer: &kipAuthorizer{authorizer}, cas: cas, credentials: id}, nil
}

// newClientCAs reads the client CA sources cfg names and joins them with
// kip's signer CA.
func newClientCAs(cfg Config, client kubernetes.Interface, signerCA dynamiccertificates.CAContentProvider) (clientCAs, error) {
	sources := authn.ClientCAs{File: cfg.ClientCAFile}
	if cfg.TrustClusterClientCA {
		sources.Cluster = client
	}
	subject, err := sources.Providers()
	if err != nil {
		return clientCAs{}, err
	}
	cas := clientCAs{subject: subject, subjectUnion: authn.UnionOf(subject...), signer: signerCA}
	cas.handshake = authn.UnionOf(cas.all()...)
	return cas, nil
}

// all is every source whose certificates kip accepts: the subject CAs,
// then the signer.
func (c clientCAs) all() []dynamiccertificates.CAContentProvider {
	if c.signer == nil {
		return c.subject
	}
	return append(c.subject[:len(c.subject):len(c.subject)], c.signer)
}

// newAuthenticator is kip's request authenticator, wrapped so that no
// identity kip impersonates takes kip's own upstream name.
func newAuthenticator(cfg Config, client kubernetes.Interface, id *kipCredentials, subjectCAs dynamiccertificates.CAContentProvider, rec *metrics.Recorder) (*kipAuthenticator, error) {
	reviews, err := tokenReviewClient(cfg.Upstream, client)
	if err != nil {
		return nil, err
	}
	c := authn.Config{
		ClientCA:           subjectCAs,
		TokenReview:        reviews,
		TokenCacheTTL:      cfg.TokenCacheTTL,
		TokenReviewTimeout: 10 * time.Second,
		Metrics:            rec,
	}
	id.kipWide(&c)
	a, err := authn.New(c)
	if err != nil {
		return nil, err
	}
	return &kipAuthenticator{id.refuseKipName(a)}, nil
}

// tokenReviewClient is the client of the TokenReviews kip makes for its
// callers: a client of its own, so that a flood of unknown tokens waits in
// its own client-side rate limit, not in the one kip's SubjectAccessReviews
// and own-name checks share. Without a config (tests) it is client's.
func tokenReviewClient(upstream *rest.Config, client kubernetes.Interface) (authenticationv1client.AuthenticationV1Interface, error) {
	if upstream == nil {
		return client.AuthenticationV1(), nil
	}
	own, err := kubernetes.NewForConfig(rest.CopyConfig(upstream))
	if err != nil {
		return nil, fmt.Errorf("building the TokenReview client: %w", err)
	}
	return own.AuthenticationV1(), nil
}

// checkWired fails unless the generic server, once completed, serves with
// exactly the authenticator, authorizer and handshake CAs newSecurity
// built: none missing, none replaced by a default, none wrapped. Complete
// wraps the authenticator itself when the loopback client has a bearer
// token, letting that token in as system:masters; kip has no use for
// loopback, so such a wrapper can only be a mistake. served is the
// authorizer the generic server kept for itself.
func (s *security) checkWired(c *genericapiserver.Config, served authorizer.UnconditionalAuthorizer) error {
	if s.authenticator == nil || s.authenticator.Request == nil {
		return errors.New("kip has no request authenticator; refusing to serve")
	}
	if s.authorizer == nil || s.authorizer.Authorizer == nil {
		return errors.New("kip has no authorizer; refusing to serve")
	}
	if s.cas.handshake == nil {
		return errors.New("kip has no client CAs for the TLS handshake; refusing to serve")
	}
	var errs []error
	if !same(c.Authentication.Authenticator, s.authenticator) {
		errs = append(errs, fmt.Errorf("the generic server authenticates with %T, not kip's authenticator", c.Authentication.Authenticator))
	}
	if !same(c.Authorization.Authorizer, s.authorizer) || !same(served, s.authorizer) {
		errs = append(errs, fmt.Errorf("the generic server authorizes with %T (and %T), not kip's authorizer", c.Authorization.Authorizer, served))
	}
	if c.SecureServing == nil || !same(c.SecureServing.ClientCA, s.cas.handshake) {
		errs = append(errs, errors.New("the generic server does not ask for client certificates from kip's client CAs"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("kip's security is not wired as built; refusing to serve: %w", errors.Join(errs...))
	}
	return nil
}

// same reports whether got is the very value built. Every value
// newSecurity builds is a pointer, so comparing is safe once the types
// match, and anything of another type, however it wraps the built one,
// is not the same.
func same(got, built any) bool {
	t := reflect.TypeOf(built)
	return t != nil && t.Kind() == reflect.Pointer && reflect.TypeOf(got) == t && got == built
}

// readiness fails while a client CA source has not loaded, or while what
// kip verifies itself is not ready.
func (s *security) readiness() []healthz.HealthChecker {
	var checks []healthz.HealthChecker
	if len(s.cas.subject) > 0 {
		checks = append(checks, caLoaded("client-ca", s.cas.subject...))
	}
	return append(checks, s.credentials.readiness()...)
}

// expiry names the certificates whose expiry kip reports: the signer CA,
// the subject CAs, and the serving certificate.
func (s *security) expiry(serving dynamiccertificates.CertKeyContentProvider) metrics.Expiry {
	return metrics.Expiry{SignerCA: s.cas.signer, ClientCA: s.cas.subjectUnion, Serving: serving}
}
