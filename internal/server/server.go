package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/compatibility"

	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/proxy"
	"github.com/kip-proxy/kip/internal/sessions"
	"github.com/kip-proxy/kip/internal/sessionsapi"
)

// Config is everything `kip serve` needs, already validated.
type Config struct {
	// Generic carries serving, audit, in-flight limits and timeouts, as
	// applied from the standard k8s.io/apiserver options.
	Generic *genericapiserver.Config
	// Upstream names the API server and kip's own credentials for it. In
	// a gateway it is the home cluster, where kip reads its Secrets, and
	// may be nil; it is not served.
	Upstream *rest.Config
	// Clusters, when enabled, makes kip a gateway to many clusters.
	Clusters ClustersConfig
	// ClientCAFile and TrustClusterClientCA choose the client certificate
	// CAs; see authn.ClientCAs.
	ClientCAFile         string
	TrustClusterClientCA bool
	TokenCacheTTL        time.Duration
	// Credentials are what kip verifies itself: its signer CA, OIDC and
	// webhook tokens, and the credential exchange.
	Credentials CredentialsConfig
	// ProbeListener serves /livez, /readyz and /metrics; nil turns probes off.
	ProbeListener net.Listener
	Profiling     bool
	// AccessLog writes a log line for every request.
	AccessLog bool
	// Recorder, when set, records every exec and attach session.
	Recorder proxy.Recorder
	// Sessions, when set, is where kip reads recordings back to serve the
	// sessions.kip.dev API; without it, that API answers 404.
	Sessions sessions.Store
	// RecordingRequired refuses exec, attach and port-forward with 503
	// while Recorder is not Ready, rather than run them unrecorded.
	RecordingRequired bool
	// Metrics is where kip's metrics are counted; nil builds one. Options
	// build it ahead when a part they build (the recorder) counts into it.
	Metrics *metrics.Recorder
	// Background is work that runs while kip serves and ends with it,
	// such as uploading finished recordings.
	Background []func(context.Context)
	// StreamWriteTimeout bounds each write of a watch or another
	// streamed answer to its caller; 0: no bound. See proxy.LongRunning.
	StreamWriteTimeout time.Duration

	// drain is done once kip drains on shutdown, and ends every
	// streamed answer; New sets it.
	drain context.Context
}

// NewMetrics is the metrics of a kip serving clusters: in gateway mode,
// request metrics carry the cluster each request was routed to.
func NewMetrics(clusters ClustersConfig) *metrics.Recorder {
	if clusters.Enabled() {
		return metrics.NewRecorder(metrics.WithClusterOf(gateway.ClusterFrom))
	}
	return metrics.NewRecorder()
}

// metrics is c.Metrics, or new ones when the options built none.
func (c Config) metrics() *metrics.Recorder {
	if c.Metrics != nil {
		return c.Metrics
	}
	return NewMetrics(c.Clusters)
}

// proxyOptions are the options every proxy kip builds shares, before
// those of its cluster.
func (c Config) proxyOptions(more ...proxy.Option) []proxy.Option {
	more = append(more, proxy.WithLongRunning(c.streamLimits()))
	if c.Recorder != nil {
		more = append(more, proxy.WithRecorder(c.Recorder))
		if c.RecordingRequired {
			more = append(more, proxy.RequireRecording())
		}
	}
	return more
}

// withSessionsAPI puts kip's own sessions API in place of the proxy for
// that API's paths: innermost, so it is reached only once the caller is
// authenticated and the upstream's RBAC has allowed the request.
func (c Config) withSessionsAPI(proxy http.Handler) http.Handler {
	return sessionsapi.WithSessions(proxy, sessionsapi.New(c.Sessions))
}

// Server is a ready-to-run kip.
type Server struct {
	generic     *genericapiserver.GenericAPIServer
	credentials *kipCredentials
	// stopCredentials ends the credential verifiers' background work.
	stopCredentials context.CancelFunc
	probes          net.Listener
	ready           []healthz.HealthChecker
	metrics         http.Handler
	profiling       bool
	stopping        chan struct{}
	background      []func(context.Context)
	// gateway is set when kip fronts many clusters.
	gateway *clusterGateway
	// drain ends streamed answers once shutdown's delay has passed;
	// drained tells that it has.
	drain   func()
	drained context.Context
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

// New builds kip: its security, its request path and the generic server
// that serves them.
func New(cfg Config) (*Server, error) {
	var client kubernetes.Interface
	if cfg.Upstream != nil {
		c, err := kubernetes.NewForConfig(cfg.Upstream)
		if err != nil {
			return nil, fmt.Errorf("building the upstream client: %w", err)
		}
		client = c
	}
	lifecycle, stopCredentials := context.WithCancel(context.Background())
	// One recorder for every part, the proxies' stream ends included.
	cfg.Metrics = cfg.metrics()
	drained, drain := context.WithCancel(context.Background())
	cfg.drain = drained
	build := build
	if cfg.Clusters.Enabled() {
		build = buildGateway
	} else if client == nil {
		stopCredentials()
		drain()
		return nil, errors.New("kip needs an upstream: give --kubeconfig, run in a cluster, or front many clusters with --clusters-dir")
	}
	s, err := build(lifecycle, cfg, client)
	if err != nil {
		stopCredentials()
		drain()
		return nil, err
	}
	s.stopCredentials = stopCredentials
	s.drain, s.drained = drain, drained
	return s, nil
}

// build reads top to bottom: kip's security and request path are built
// first, each piece once, then handed to the generic server by
// newGenericServer.
func build(lifecycle context.Context, cfg Config, client kubernetes.Interface) (*Server, error) {
	rec := cfg.metrics()
	sec, err := newSecurity(lifecycle, cfg, client, rec)
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(cfg.Upstream, cfg.proxyOptions()...)
	if err != nil {
		return nil, err
	}
	obs := observability{requests: rec.Requests(), accessLog: cfg.AccessLog}
	generic, err := newGenericServer(cfg.Generic, sec, func(c *genericapiserver.Config) http.Handler {
		return buildHandlerChain(cfg.withSessionsAPI(p), sec.credentials.layers(), c, obs, gatewayLayers{})
	})
	if err != nil {
		return nil, err
	}
	// kip is ready once it can reach the upstream and every source of
	// identity it is configured with has loaded; before that, a caller
	// with valid credentials would be refused.
	return newServer(cfg, generic, sec, rec, upstreamReady(client.Discovery().RESTClient(), 3*time.Second)), nil
}

// newServer assembles a Server; ready are its readiness checks beside
// shutting down and kip's own credentials'.
func newServer(cfg Config, generic *genericapiserver.GenericAPIServer, sec *security, rec *metrics.Recorder, ready ...healthz.HealthChecker) *Server {
	stopping := make(chan struct{})
	return &Server{
		generic:     generic,
		credentials: sec.credentials,
		probes:      cfg.ProbeListener,
		ready:       slices.Concat(ready, []healthz.HealthChecker{notShuttingDown(stopping)}, sec.readiness()),
		metrics:     rec.Handler(sec.expiry(cfg.Generic.SecureServing.Cert)),
		profiling:   cfg.Profiling,
		stopping:    stopping,
		background:  cfg.Background,
	}
}

// buildGateway is build for a gateway to many clusters: the same chain,
// with routing outermost, each cluster's backend chosen before
// authentication and its access policy checked after, and the registry's
// proxies as the last step. Readiness is about kip itself: its
// credentials and its cluster sources, never a cluster.
func buildGateway(lifecycle context.Context, cfg Config, home kubernetes.Interface) (*Server, error) {
	rec := cfg.metrics()
	gw, sec, err := newClusterGateway(lifecycle, cfg, home, rec)
	if err != nil {
		return nil, err
	}
	list, err := gw.clusterList()
	if err != nil {
		return nil, err
	}
	obs := observability{requests: rec.Requests(), accessLog: cfg.AccessLog}
	generic, err := newGenericServer(cfg.Generic, sec, func(c *genericapiserver.Config) http.Handler {
		layers := gw.layers()
		layers.list = list
		return buildHandlerChain(cfg.withSessionsAPI(gw.ups), sec.credentials.layers(), c, obs, layers)
	})
	if err != nil {
		return nil, err
	}
	s := newServer(cfg, generic, sec, rec, gw.readiness())
	s.gateway = gw
	return s, nil
}

// newGenericServer hands kip's security and request path to the generic
// server. It is the one place that sets the generic config's
// authenticator, authorizer and handshake CAs, and it refuses to return a
// server that did not keep exactly those (see checkWired).
func newGenericServer(g *genericapiserver.Config, sec *security, chain func(*genericapiserver.Config) http.Handler) (*genericapiserver.GenericAPIServer, error) {
	if g.SecureServing == nil {
		return nil, errors.New("kip serves only over TLS, and the server has no secure port")
	}
	g.SecureServing.ClientCA = sec.cas.handshake
	g.Authentication.Authenticator = sec.authenticator
	g.Authorization.Authorizer = sec.authorizer
	g.BuildHandlerChainFunc = func(_ http.Handler, c *genericapiserver.Config) http.Handler {
		// The generic server's own handler (its /healthz, /version and
		// discovery) is left out on purpose: every path belongs upstream.
		return withClientCAsLoaded(chain(c), sec.cas.all(), c.Serializer)
	}
	generic, err := g.Complete(nil).New("kip", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("building the server: %w", err)
	}
	if err := sec.checkWired(g, generic.Authorizer); err != nil {
		return nil, err
	}
	// A CA that leaves the handshake's set, now known to be there, is one
	// no authenticator of kip trusts any more: the requests its
	// certificates opened end.
	sec.credentials.running.EndWhenUntrusted(sec.cas.handshake)
	return generic, nil
}

// stopOnError is ctx, ended early by the first error from errs; failed
// returns that error once the server has stopped.
func stopOnError(ctx context.Context, errs <-chan error) (_ context.Context, failed func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case err = <-errs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() error { cancel(); <-done; return err }
}

// Run serves until ctx ends, then drains in-flight requests and returns.
func (s *Server) Run(ctx context.Context) error {
	probeCtx, stopProbes := context.WithCancel(context.Background())
	defer stopProbes()
	probeErr := make(chan error, 1)
	var lines func() []string
	if s.gateway != nil {
		lines = s.gateway.statusLines
	}
	if s.probes != nil {
		go func() { probeErr <- serveProbes(probeCtx, s.probes, probeMux(s.ready, lines, s.metrics, s.profiling)) }()
	}
	defer s.stopCredentials()
	s.credentials.run(ctx)
	sourceFailed := func() error { return nil }
	if s.gateway != nil {
		ctx, sourceFailed = stopOnError(ctx, s.gateway.run(ctx))
	}
	go func() {
		<-ctx.Done()
		close(s.stopping)
	}()
	defer s.drain()
	drainAfter(ctx, s.generic.ShutdownDelayDuration, s.drained, s.drain)
	// Background work ends with serving, also when serving fails early.
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer func() { stopBackground(); background.Wait() }()
	for _, work := range s.background {
		background.Go(func() { work(bgCtx) })
	}
	err := s.generic.PrepareRun().RunWithContext(ctx)
	if serr := sourceFailed(); serr != nil {
		err = fmt.Errorf("a cluster source failed: %w", serr)
	}
	stopProbes()
	if s.probes != nil {
		if perr := <-probeErr; err == nil {
			err = perr
		}
	}
	return err
}
