package server

import (
	"net/http"
	"slices"

	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"

	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
)

// observability is what the chain records besides the audit log: metrics
// (none when requests is nil) and, when asked, an access log.
type observability struct {
	requests  *metrics.Requests
	accessLog bool
}

func (o observability) countRequests(h http.Handler) http.Handler {
	if o.requests == nil {
		return h
	}
	return o.requests.WithRequests(h)
}

func (o observability) measureUpstream(h http.Handler) http.Handler {
	if o.requests == nil {
		return h
	}
	return o.requests.WithUpstream(h)
}

func (o observability) logAccess(h http.Handler) http.Handler {
	if !o.accessLog {
		return h
	}
	return withAccessLog(h)
}

func (o observability) noteUser(h http.Handler) http.Handler {
	if !o.accessLog {
		return h
	}
	return withAccessLogUser(h)
}

// layer is one filter of kip's chain, named so that a benchmark can
// measure what each one costs.
type layer struct {
	name string
	wrap func(http.Handler) http.Handler
}

// gatewayLayers are the steps a gateway to many clusters adds to the
// chain; all nil for one cluster.
type gatewayLayers struct {
	// routing strips /clusters/<name> and records the cluster, before
	// anything reads the path.
	routing func(http.Handler) http.Handler
	// backend gives the request its cluster's authenticator, authorizer
	// and proxy, before authentication.
	backend func(http.Handler) http.Handler
	// policy refuses a caller the cluster's access policy keeps out,
	// after authentication and before anything reaches the cluster.
	policy func(http.Handler) http.Handler
	// list answers the list of clusters the caller may reach.
	list http.Handler
	// clusterShare bounds each cluster's share of kip's in-flight limits.
	clusterShare bool
}

// inFlightShare is the per-cluster share of kip's in-flight limits, in a
// gateway; nil for one cluster.
func (gw gatewayLayers) inFlightShare(c *genericapiserver.Config) func(http.Handler) http.Handler {
	if !gw.clusterShare {
		return nil
	}
	return func(h http.Handler) http.Handler {
		return withClusterShare(h, c.MaxRequestsInFlight, c.MaxMutatingRequestsInFlight, c.LongRunningFunc, c.Serializer)
	}
}

// buildHandlerChain is kip's request path: proxy wrapped in every layer of
// handlerLayers, so that a request meets the last layer first.
func buildHandlerChain(proxy, exchangeHandler http.Handler, c *genericapiserver.Config, obs observability, gw gatewayLayers) http.Handler {
	h := proxy
	for _, l := range handlerLayers(exchangeHandler, c, obs, gw) {
		h = l.wrap(h)
	}
	return h
}

// handlerLayers is kip's request path, read from the proxy outwards: each
// line wraps the ones above it, so a request meets them bottom to top.
// It follows k8s.io/apiserver's DefaultBuildHandlerChain, without what only
// a storage-backed server needs, and with the original caller remembered
// before nested impersonation replaces it.
//
// exchange, when kip has one, answers the credential exchange before
// authentication: it is the one resource an unauthenticated caller may
// reach, and it authenticates the token in its body itself.
func handlerLayers(exchangeHandler http.Handler, c *genericapiserver.Config, obs observability, gw gatewayLayers) []layer {
	failed := genericapifilters.Unauthorized(c.Serializer)
	failed = genericapifilters.WithFailedAuthenticationAudit(failed, c.AuditBackend, c.AuditPolicyRuleEvaluator)
	layers := []layer{
		{"measure upstream", obs.measureUpstream},
		{"authorization", func(h http.Handler) http.Handler {
			return genericapifilters.WithAuthorization(h, c.Authorization.Authorizer, c.Serializer)
		}},
		{"cluster share of in flight", gw.inFlightShare(c)},
		{"max in flight", func(h http.Handler) http.Handler {
			return withMaxInFlight(h, c.MaxRequestsInFlight, c.MaxMutatingRequestsInFlight, c.LongRunningFunc, c.Serializer)
		}},
		{"unused impersonation refused", func(h http.Handler) http.Handler { return withUnusedImpersonationRefused(h, c.Serializer) }},
		{"note impersonated user", obs.noteUser}, // the impersonated user, with kubectl --as
		{"impersonation", func(h http.Handler) http.Handler {
			return impersonation.WithImpersonation(h, c.Authorization.Authorizer, c.Serializer)
		}},
		{"cluster access policy", gw.policy},
		{"note user", obs.noteUser}, // the authenticated caller
		{"original user", caller.WithOriginalUser},
		{"audit", func(h http.Handler) http.Handler {
			return genericapifilters.WithAudit(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc)
		}},
		// No front-proxy request-header configuration: kip never trusts
		// X-Remote-* headers from anyone.
		{"authentication", func(h http.Handler) http.Handler {
			return genericapifilters.WithAuthentication(h, c.Authentication.Authenticator, failed, c.Authentication.APIAudiences, nil)
		}},
		{"cluster backend", gw.backend},
	}
	if gw.list != nil {
		layers = append(layers, layer{"cluster list", func(h http.Handler) http.Handler { return withPath(h, gateway.ListPath, gw.list) }})
	}
	if exchangeHandler != nil {
		layers = append(layers, layer{"exchange", func(h http.Handler) http.Handler { return exchange.WithExchange(h, exchangeHandler) }})
	}
	layers = append(layers,
		layer{"warning recorder", genericapifilters.WithWarningRecorder},
		// The request deadline bounds every short request: the upstream
		// call carries it, and the proxy answers 504 when it passes. The
		// generic server's timeout filter would add a goroutine, a timer
		// and a preformatted error to every request to do the same again.
		layer{"request deadline", func(h http.Handler) http.Handler {
			return genericapifilters.WithRequestDeadline(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc, c.Serializer, c.RequestTimeout)
		}},
		layer{"wait group", func(h http.Handler) http.Handler {
			return genericfilters.WithWaitGroup(h, c.LongRunningFunc, c.NonLongRunningRequestWaitGroup)
		}},
		layer{"hsts", func(h http.Handler) http.Handler { return genericfilters.WithHSTS(h, c.HSTSDirectives) }},
		layer{"http logging", genericfilters.WithHTTPLogging},
		layer{"access log", obs.logAccess},
		layer{"count requests", obs.countRequests},
		layer{"request info", func(h http.Handler) http.Handler { return genericapifilters.WithRequestInfo(h, c.RequestInfoResolver) }},
		layer{"request received timestamp", genericapifilters.WithRequestReceivedTimestamp},
		layer{"routing", gw.routing},
		layer{"panic recovery", func(h http.Handler) http.Handler { return genericfilters.WithPanicRecovery(h, c.RequestInfoResolver) }},
		layer{"audit init", func(h http.Handler) http.Handler { return withAuditInit(h, c) }},
		layer{"grown stack", withGrownStack},
	)
	// A layer without a filter (a gateway's, in single-cluster kip) is no
	// layer at all.
	return slices.DeleteFunc(layers, func(l layer) bool { return l.wrap == nil })
}

// withPath answers path with handler, and everything else with h.
func withPath(h http.Handler, path string, handler http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			handler.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// withAuditInit gives each request an audit context and ID when kip writes
// an audit log. Without one, every audit filter is a no-op, so the context
// would be ten allocations per request that nothing reads, and the Audit-Id
// it echoes would only stand beside the one kube-apiserver sends back, which
// names the request in the log that exists.
func withAuditInit(h http.Handler, c *genericapiserver.Config) http.Handler {
	if c.AuditBackend == nil || c.AuditPolicyRuleEvaluator == nil {
		return h
	}
	return genericapifilters.WithAuditInit(h)
}
