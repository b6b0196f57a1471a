package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/compatibility"

	"github.com/kip-proxy/kip/internal/authn"
	"github.com/kip-proxy/kip/internal/authz"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/proxy"
	"github.com/kip-proxy/kip/internal/signer"
)

// Config is everything `kip serve` needs, already validated.
type Config struct {
	// Generic carries serving, audit, in-flight limits and timeouts, as
	// applied from the standard k8s.io/apiserver options.
	Generic *genericapiserver.Config
	// Upstream names the API server and kip's own credentials for it.
	Upstream *rest.Config
	// ClientCAFile and TrustClusterClientCA choose the client certificate
	// CAs; see authn.ClientCAs.
	ClientCAFile         string
	TrustClusterClientCA bool
	TokenCacheTTL        time.Duration
	// Identity is what kip verifies itself: its signer CA, OIDC and
	// webhook tokens, and the credential exchange.
	Identity IdentityConfig
	// ProbeListener serves /livez, /readyz and /metrics; nil turns probes off.
	ProbeListener net.Listener
	Profiling     bool
	// AccessLog writes a log line for every request.
	AccessLog bool
}

// Server is a ready-to-run kip.
type Server struct {
	generic  *genericapiserver.GenericAPIServer
	identity *kipIdentities
	// stopIdentity ends the identity verifiers' background work.
	stopIdentity context.CancelFunc
	probes       net.Listener
	ready        []healthz.HealthChecker
	metrics      http.Handler
	profiling    bool
	stopping     chan struct{}
}

// NewGenericConfig returns a generic server configuration with what kip needs
// and nothing that a storage-backed API server needs.
func NewGenericConfig() *genericapiserver.Config {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	c := genericapiserver.NewConfig(serializer.NewCodecFactory(scheme))
	c.EffectiveVersion = compatibility.NewEffectiveVersionFromString("1.37", "", "")
	c.EquivalentResourceRegistry = runtime.NewEquivalentResourceRegistry()
	// kip serves no API of its own, so nothing calls it over loopback; the
	// generic server only insists that this is set.
	c.LoopbackClientConfig = &rest.Config{}
	c.LongRunningFunc = genericfilters.BasicLongRunningRequestCheck(
		sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"),
	)
	c.HSTSDirectives = []string{"max-age=31536000", "includeSubDomains"}
	c.EnableIndex, c.EnableDiscovery, c.EnableProfiling, c.EnableMetrics = false, false, false, false
	c.FlowControl = nil
	return c
}

// New wires the authenticator, authorizer and proxy into the generic server.
func New(cfg Config) (*Server, error) {
	client, err := kubernetes.NewForConfig(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("building the upstream client: %w", err)
	}
	lifecycle, stopIdentity := context.WithCancel(context.Background())
	s, err := build(lifecycle, cfg, client)
	if err != nil {
		stopIdentity()
		return nil, err
	}
	s.stopIdentity = stopIdentity
	return s, nil
}

func build(lifecycle context.Context, cfg Config, client kubernetes.Interface) (*Server, error) {
	rec := metrics.NewRecorder()
	id, err := newIdentity(lifecycle, cfg.Identity, client, rec)
	if err != nil {
		return nil, err
	}
	clientCAs, err := wireSecurity(cfg, client, id, rec)
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	trustedCAs := clientCAs
	if signer := id.signerCA(); signer != nil {
		trustedCAs = append(slices.Clip(clientCAs), signer)
	}
	obs := observability{requests: rec.Requests(), accessLog: cfg.AccessLog}
	cfg.Generic.BuildHandlerChainFunc = func(_ http.Handler, c *genericapiserver.Config) http.Handler {
		// The generic server's own handler (its /healthz, /version and
		// discovery) is left out on purpose: every path belongs upstream.
		return withClientCAsLoaded(buildHandlerChain(p, id.exchange, c, obs), trustedCAs, c.Serializer)
	}
	generic, err := cfg.Generic.Complete(nil).New("kip", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("building the server: %w", err)
	}
	stopping := make(chan struct{})
	// kip is ready once it can reach the upstream and every source of
	// identity it is configured with has loaded; before that, a caller
	// with valid credentials would be refused.
	ready := []healthz.HealthChecker{upstreamReady(client.Discovery().RESTClient(), 3*time.Second), notShuttingDown(stopping)}
	if len(clientCAs) > 0 {
		ready = append(ready, caLoaded("client-ca", clientCAs...))
	}
	ready = append(ready, id.readiness()...)
	return &Server{
		generic:  generic,
		identity: id,
		probes:   cfg.ProbeListener,
		ready:    ready,
		metrics: rec.Handler(metrics.Expiry{
			SignerCA: id.signerCA(),
			ClientCA: dynamiccertificates.NewUnionCAContentProvider(clientCAs...),
			Serving:  cfg.Generic.SecureServing.Cert,
		}),
		profiling: cfg.Profiling,
		stopping:  stopping,
	}, nil
}

// wireSecurity sets the authenticator, the authorizer and the CAs asked for
// in the TLS handshake, and returns the client CA sources one by one.
func wireSecurity(cfg Config, client kubernetes.Interface, id *kipIdentities, rec *metrics.Recorder) ([]dynamiccertificates.CAContentProvider, error) {
	cas := authn.ClientCAs{File: cfg.ClientCAFile}
	if cfg.TrustClusterClientCA {
		cas.Cluster = client
	}
	sources, err := cas.Providers()
	if err != nil {
		return nil, err
	}
	clientCA := authn.UnionOf(sources...)
	// The generic server runs the CA controllers, kip's signer among them,
	// and reloads the TLS handshake's list of acceptable CAs from this
	// union.
	cfg.Generic.SecureServing.ClientCA = dynamiccertificates.NewUnionCAContentProvider(
		append([]dynamiccertificates.CAContentProvider{clientCA}, id.extraClientCAs()...)...)
	authCfg := authn.Config{
		ClientCA:           clientCA,
		TokenReview:        client.AuthenticationV1(),
		TokenCacheTTL:      cfg.TokenCacheTTL,
		TokenReviewTimeout: 10 * time.Second,
		Metrics:            rec,
	}
	if id.signer != nil {
		authCfg.SignerCA, authCfg.SignerCertificates = id.signer, signer.NewAuthenticator(id.signer)
	}
	if id.tokens != nil {
		authCfg.KipTokens = id.tokens
	}
	authenticator, err := authn.New(authCfg)
	if err != nil {
		return nil, err
	}
	// No identity kip impersonates may take kip's own upstream name.
	cfg.Generic.Authentication.Authenticator = id.refuseOwnName(authenticator)
	authorizer, err := authz.New(authz.Config{
		SubjectAccessReview: client.AuthorizationV1(),
		AllowCacheTTL:       10 * time.Second,
		DenyCacheTTL:        5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	cfg.Generic.Authorization.Authorizer = authorizer
	return sources, nil
}

// Run serves until ctx ends, then drains in-flight requests and returns.
func (s *Server) Run(ctx context.Context) error {
	probeCtx, stopProbes := context.WithCancel(context.Background())
	defer stopProbes()
	probeErr := make(chan error, 1)
	if s.probes != nil {
		go func() { probeErr <- serveProbes(probeCtx, s.probes, probeMux(s.ready, s.metrics, s.profiling)) }()
	}
	defer s.stopIdentity()
	s.identity.run(ctx)
	go func() {
		<-ctx.Done()
		close(s.stopping)
	}()
	err := s.generic.PrepareRun().RunWithContext(ctx)
	stopProbes()
	if s.probes != nil {
		if perr := <-probeErr; err == nil {
			err = perr
		}
	}
	return err
}
