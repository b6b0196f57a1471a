package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/authn"
	"github.com/kip-proxy/kip/internal/authz"
	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/proxy"
)

// ClustersConfig turns kip into a gateway to many clusters, each served at
// /clusters/<name>/. Its sources are a directory of kubeconfigs, the
// labelled Secrets of a namespace, or both.
type ClustersConfig struct {
	// Dir holds one kubeconfig per cluster, named after it.
	Dir string
	// SecretNamespace, when set, is read for Secrets labelled SecretLabel
	// (clusters.DefaultSecretLabel when empty), in the home cluster.
	SecretNamespace, SecretLabel string
}

// Enabled reports whether kip fronts many clusters.
func (c ClustersConfig) Enabled() bool { return c.Dir != "" || c.SecretNamespace != "" }

// loginGroupPath is kip's own API group, which routing leaves unrouted:
// the credential exchange and the cluster list are kip's, not a cluster's.
const loginGroupPath = "/apis/login.kip.dev/"

// clusterGateway is what kip holds when it fronts many clusters: the
// registry and the sources that fill it, each cluster's backend built from
// kip's credentials and the cluster's own.
type clusterGateway struct {
	cfg       Config
	ups       *gateway.Upstreams
	handshake *authn.HandshakeCAs
	id        *kipCredentials
	// subject are kip's own subject CAs (--client-ca-file), valid for
	// every cluster.
	subject []dynamiccertificates.CAContentProvider
	rec     *metrics.Recorder
	home    kubernetes.Interface
	// loaded closes once every source has handed over its first snapshot.
	loaded     chan struct{}
	loadedOnce sync.Once
}

// newClusterGateway builds the registry, empty until Run starts the
// sources, and kip's security as a gateway: the authenticator and
// authorizer of the request's cluster, and the handshake CAs, which grow
// with the clusters' own client CAs.
func newClusterGateway(ctx context.Context, cfg Config, home kubernetes.Interface, rec *metrics.Recorder) (*clusterGateway, *security, error) {
	g := &clusterGateway{cfg: cfg, rec: rec, home: home, loaded: make(chan struct{})}
	g.ups = gateway.NewUpstreams(g.backend, gateway.Options{
		Eager:       cfg.TrustClusterClientCA,
		Observe:     clusterMetrics{rec.Clusters()},
		LongRunning: longRunning(cfg.Generic.LongRunningFunc),
		Ended:       rec.LongRunningEnds().Ended,
	})
	id, err := newCredentials(ctx, cfg.Credentials, home, rec, g.ups.ReservedName)
	if err != nil {
		return nil, nil, err
	}
	g.id = id
	// The home cluster's client CA is no cluster's: only each cluster's
	// own CA is trusted, and only there.
	kipWide := cfg
	kipWide.TrustClusterClientCA = false
	cas, err := newClientCAs(kipWide, home, id.signerCA())
	if err != nil {
		return nil, nil, err
	}
	g.subject = cas.subject
	g.handshake = authn.NewHandshakeCAs(cas.all()...)
	cas.handshake = g.handshake
	return g, &security{
		authenticator: &kipAuthenticator{g.ups.Authenticator()},
		authorizer:    &kipAuthorizer{g.ups.Authorizer()},
		cas:           cas,
		credentials:   id,
	}, nil
}

// backend builds one cluster's backend. Nothing in it is shared with
// another cluster's but kip's own verifiers (its signer CA, OIDC and
// webhook tokens, --client-ca-file), whose answers do not depend on the
// cluster.
func (g *clusterGateway) backend(ctx context.Context, c clusters.Cluster, health *gateway.Health) (*gateway.Backend, error) {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("building the client of cluster %q: %w", c.Name, err)
	}
	p, err := proxy.New(c.Config, g.cfg.proxyOptions(proxy.WithHealth(health))...)
	if err != nil {
		return nil, err
	}
	subject, clusterCA, err := g.subjectCAs(ctx, c.Name, client)
	if err != nil {
		return nil, err
	}
	own := &caller.KipName{}
	reviews, err := tokenReviewClient(c.Config, client)
	if err != nil {
		return nil, err
	}
	a, err := g.authenticator(reviews, subject)
	if err != nil {
		return nil, err
	}
	az, err := authz.New(authz.Config{SubjectAccessReview: client.AuthorizationV1(), AllowCacheTTL: 10 * time.Second, DenyCacheTTL: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return &gateway.Backend{
		Proxy:         p,
		Authenticator: caller.RefuseKipName(own, a),
		Authorizer:    az,
		Check:         checkCluster(own, client, clusterCA),
		ReservedName: func(name string) string {
			if _, known := own.Get(); !known {
				return ""
			}
			return own.Reason(name)
		},
	}, nil
}

// subjectCAs are the CAs trusted for a certificate's subject at one
// cluster: kip's own, and with --trust-cluster-client-ca the cluster's
// (also returned on its own), which the handshake names from then on and
// forgets when ctx ends.
func (g *clusterGateway) subjectCAs(ctx context.Context, name string, client kubernetes.Interface) (subject, clusterCA dynamiccertificates.CAContentProvider, _ error) {
	sources := g.subject
	if g.cfg.TrustClusterClientCA {
		own, err := authn.ClientCAs{Cluster: client}.Providers()
		if err != nil {
			return nil, nil, err
		}
		ca := own[0]
		clusterCA = ca
		if r, ok := ca.(dynamiccertificates.ControllerRunner); ok {
			go r.Run(ctx, 1)
		}
		g.handshake.Set(name, ca)
		context.AfterFunc(ctx, func() { g.handshake.Remove(name, ca) })
		sources = append(sources[:len(sources):len(sources)], ca)
	}
	if len(sources) == 0 {
		return nil, clusterCA, nil
	}
	return authn.UnionOf(sources...), clusterCA, nil
}

// authenticator accepts kip's own identities and those only this cluster
// vouches for, with caches of its own.
func (g *clusterGateway) authenticator(reviews authenticationv1client.AuthenticationV1Interface, subject dynamiccertificates.CAContentProvider) (authenticator.Request, error) {
	c := authn.Config{
		ClientCA:           subject,
		TokenReview:        reviews,
		TokenCacheTTL:      g.cfg.TokenCacheTTL,
		TokenReviewTimeout: 10 * time.Second,
		Metrics:            g.rec,
	}
	g.id.kipWide(&c)
	return authn.New(c)
}

// checkCluster learns kip's own username at the cluster the first time,
// and waits for the cluster's client CA, when kip trusts it, to load;
// afterwards it asks the cluster's /readyz. It runs once at a time: the
// first requests to a cluster wait for one answer, not one each.
func checkCluster(own *caller.KipName, client kubernetes.Interface, clusterCA dynamiccertificates.CAContentProvider) func(context.Context) error {
	var mu sync.Mutex
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, known := own.Get(); !known {
			if err := own.LearnOnce(ctx, client.AuthenticationV1()); err != nil {
				return err
			}
			return caLoadedBy(ctx, clusterCA)
		}
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
			return fmt.Errorf("the cluster is not ready: %w", err)
		}
		return nil
	}
}

// caLoadedBy waits for ca, if any, to have loaded: until then the
// cluster's certificates would get 401 as if they were bad.
func caLoadedBy(ctx context.Context, ca dynamiccertificates.CAContentProvider) error {
	if ca == nil {
		return nil
	}
	for len(ca.CurrentCABundleContent()) == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster's client CA (ConfigMap kube-system/extension-apiserver-authentication) has not loaded: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// listAuthenticator is kip's own identities alone, for the cluster list:
// without a cluster there is no TokenReview to ask and no cluster CA.
func (g *clusterGateway) listAuthenticator() (authenticator.Request, error) {
	c := authn.Config{Metrics: g.rec}
	if len(g.subject) > 0 {
		c.ClientCA = authn.UnionOf(g.subject...)
	}
	g.id.kipWide(&c)
	return authn.New(c)
}

// clusterList answers the list of the clusters the caller may reach, and
// is the authenticator in front of it. It knows kip's own identities only:
// without a cluster there is no TokenReview to ask and no cluster CA to
// trust. Without any, there is no list.
func (g *clusterGateway) clusterList() (clusterList, error) {
	if len(g.subject) == 0 && g.id.signer == nil && g.id.tokens == nil {
		return clusterList{}, nil
	}
	auth, err := g.listAuthenticator()
	if err != nil {
		return clusterList{}, err
	}
	return clusterList{handler: gateway.NewClusterList(g.ups.Reachable), auth: auth}, nil
}

// layers are the gateway's steps in kip's chain.
func (g *clusterGateway) layers() gatewayLayers {
	return gatewayLayers{
		routing: func(h http.Handler) http.Handler {
			return gateway.WithRouting(h, g.ups.Known, func(path string) bool { return strings.HasPrefix(path, loginGroupPath) })
		},
		backend:      g.ups.WithBackend,
		policy:       gateway.WithPolicy,
		clusterShare: true,
	}
}

// run follows every source until ctx ends. A source that cannot start
// (a directory that cannot be read) is an error: kip would otherwise
// serve an empty registry that looks like a healthy one.
func (g *clusterGateway) run(ctx context.Context) <-chan error {
	merged := &clusters.Merged{OnChange: func(s clusters.Snapshot) {
		g.ups.Apply(s)
		g.rec.Clusters().Registered(len(s.Clusters), len(s.Refused))
	}}
	var sources []func(context.Context) error
	pending := sync.WaitGroup{}
	if dir := g.cfg.Clusters.Dir; dir != "" {
		pending.Add(1)
		w := &clusters.DirWatcher{Dir: dir, Settle: 200 * time.Millisecond, Resync: time.Minute,
			OnChange: g.firstThen(&pending, metrics.SourceDir, merged)}
		sources = append(sources, w.Run)
	}
	if ns := g.cfg.Clusters.SecretNamespace; ns != "" {
		pending.Add(1)
		s := &clusters.SecretSource{Client: g.home, Namespace: ns, Label: g.cfg.Clusters.SecretLabel, Resync: 10 * time.Minute,
			OnChange: g.firstThen(&pending, metrics.SourceSecrets, merged)}
		sources = append(sources, s.Run)
	}
	go func() {
		pending.Wait()
		g.loadedOnce.Do(func() { close(g.loaded) })
	}()
	errs := make(chan error, len(sources))
	for _, run := range sources {
		go func() {
			if err := run(ctx); err != nil {
				klog.ErrorS(err, "A cluster source failed")
				errs <- err
			}
		}()
	}
	return errs
}

// firstThen hands each snapshot of source to merged, counting what it
// refused, and marks the source loaded after its first.
func (g *clusterGateway) firstThen(pending *sync.WaitGroup, source string, merged *clusters.Merged) func(clusters.Snapshot) {
	var once sync.Once
	return func(s clusters.Snapshot) {
		for range s.Refused {
			g.rec.Clusters().Refused(source)
		}
		merged.Update(source, s)
		once.Do(pending.Done)
	}
}

// readiness fails until every source has loaded once; a cluster that is
// down never makes kip unready.
func (g *clusterGateway) readiness() healthz.HealthChecker {
	return healthz.NamedCheck("cluster-registry", func(*http.Request) error {
		select {
		case <-g.loaded:
			return nil
		default:
			return fmt.Errorf("the cluster sources have not all loaded yet")
		}
	})
}

// statusLines are /readyz?verbose's lines about each cluster. They
// inform and never fail readiness.
func (g *clusterGateway) statusLines() []string {
	var lines []string
	for _, s := range g.ups.Statuses() {
		line := fmt.Sprintf("[i]cluster %s %s", s.Name, s.State)
		if s.Err != nil {
			line += ": " + s.Err.Error()
		}
		lines = append(lines, line)
	}
	return lines
}

// longRunning reads the request info the chain resolved before the
// gateway's backend step; a request without it is treated as
// long-running, which only costs it a context.
func longRunning(check apirequest.LongRunningRequestCheck) func(*http.Request) bool {
	return func(r *http.Request) bool {
		info, ok := apirequest.RequestInfoFrom(r.Context())
		return !ok || check == nil || check(r, info)
	}
}

// clusterMetrics reports the registry's clusters' health as
// kip_cluster_up, and forgets a cluster's series when it is removed.
type clusterMetrics struct{ c *metrics.Clusters }

func (m clusterMetrics) Up(cluster string, up bool) { m.c.SetUp(cluster, up) }
func (m clusterMetrics) Forget(cluster string)      { m.c.Forget(cluster) }
