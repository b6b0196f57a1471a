package server

import (
	"net/http"
	"slices"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/revocation"
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
	list clusterList
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

// credentialLayers are the steps kip's own credentials add to the chain.
type credentialLayers struct {
	// exchange, when kip has one, answers the credential exchange before
	// authentication: it is the one resource an unauthenticated caller
	// may reach, and it authenticates the token in its body itself.
	exchange http.Handler
	// running are the long-running requests that a revocation, or kip
	// ceasing to trust the CA of their certificate, ends.
	running *revocation.Running
	// runningEnded counts the requests running ended.
	runningEnded func(reason string)
	// budget, when kip has one, bounds failed authentication per address:
	// it is taken just outside authentication, given back just inside,
	// and its 429s are answered before any credential is checked.
	budget *authlimit.Budget
}

// endWhenRevoked tracks long-running requests so that a revocation of
// their caller, or kip ceasing to trust their certificate's CA, ends them.
func (cl credentialLayers) endWhenRevoked(c *genericapiserver.Config) func(http.Handler) http.Handler {
	if cl.running == nil {
		return nil
	}
	return func(h http.Handler) http.Handler {
		return withRevocableRequests(h, cl.running, longRunning(c.LongRunningFunc), cl.runningEnded)
	}
}

// buildHandlerChain is kip's request path: proxy wrapped in every layer of
// handlerLayers, so that a request meets the last layer first.
func buildHandlerChain(proxy http.Handler, cl credentialLayers, c *genericapiserver.Config, obs observability, gw gatewayLayers) http.Handler {
	h := proxy
	for _, l := range handlerLayers(cl, c, obs, gw) {
		h = l.wrap(h)
	}
	return h
}

// handlerLayers is kip's request path, read from the proxy outwards: each
// line wraps the ones above it, so a request meets them bottom to top.
// It follows k8s.io/apiserver's DefaultBuildHandlerChain, without what only
// a storage-backed server needs, and with the original caller remembered
// before nested impersonation replaces it.
func handlerLayers(cl credentialLayers, c *genericapiserver.Config, obs observability, gw gatewayLayers) []layer {
	// Refusals before authentication's end are audited as kube-apiserver
	// audits a failed authentication: a 401, and kip's 429s for a spent
	// budget or no free review slot.
	auditRefusal := func(h http.Handler) http.Handler {
		return genericapifilters.WithFailedAuthenticationAudit(h, c.AuditBackend, c.AuditPolicyRuleEvaluator)
	}
	limits := authLimitLayers(cl.budget, c, auditRefusal)
	failed := auditRefusal(limits.failed(genericapifilters.Unauthorized(c.Serializer)))
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
		{"end when revoked", cl.endWhenRevoked(c)},
		{"audit", func(h http.Handler) http.Handler {
			return genericapifilters.WithAudit(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc)
		}},
		{"failed authentication budget returned", limits.succeeded},
		// No front-proxy request-header configuration: kip never trusts
		// X-Remote-* headers from anyone.
		{"authentication", func(h http.Handler) http.Handler {
			return genericapifilters.WithAuthentication(h, c.Authentication.Authenticator, failed, c.Authentication.APIAudiences, nil)
		}},
		{"failed authentication budget", limits.budget},
		{"cluster backend", gw.backend},
	}
	layers = append(layers, layer{"cluster list", gw.list.layer(c, limits, failed)})
	if cl.exchange != nil {
		// The exchange answers before authentication, so its own audit
		// step records it: an event without a user, whose annotations
		// say what was issued to whom.
		audited := genericapifilters.WithAudit(cl.exchange, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc)
		layers = append(layers, layer{"exchange", func(h http.Handler) http.Handler { return exchange.WithExchange(h, audited) }})
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

// clusterList is a gateway's list of the clusters a caller may reach, and
// the authenticator of kip-wide identities in front of it.
type clusterList struct {
	handler http.Handler
	auth    authenticator.Request
}

// layer serves the list at its path behind the same authentication steps
// as every other request, with the list's own authenticator: the failure
// budget, the 429s, refusals audited, the unauthenticated HTTP/2
// connection ended. nil without a list.
func (l clusterList) layer(c *genericapiserver.Config, limits authLimits, failed http.Handler) func(http.Handler) http.Handler {
	if l.handler == nil {
		return nil
	}
	list := genericapifilters.WithAuthentication(wrapWith(limits.succeeded, l.handler), l.auth, failed, c.Authentication.APIAudiences, nil)
	list = wrapWith(limits.budget, list)
	return func(h http.Handler) http.Handler { return withPath(h, gateway.ListPath, list) }
}

// wrapWith is wrap(h), or h when there is no wrap.
func wrapWith(wrap func(http.Handler) http.Handler, h http.Handler) http.Handler {
	if wrap == nil {
		return h
	}
	return wrap(h)
}

// authLimits are the layers of the budget of failed authentication, and
// the failed handler that answers 429 when no review slot came free.
// Without a budget there are no layers and failed is the plain handler.
type authLimits struct {
	budget, succeeded, failed func(http.Handler) http.Handler
}

func authLimitLayers(b *authlimit.Budget, c *genericapiserver.Config, audit func(http.Handler) http.Handler) authLimits {
	if b == nil {
		return authLimits{failed: func(h http.Handler) http.Handler { return h }}
	}
	return authLimits{
		budget:    func(h http.Handler) http.Handler { return authlimit.WithFailureBudget(h, b, c.Serializer, audit) },
		succeeded: authlimit.WithSuccessNoted,
		failed:    func(h http.Handler) http.Handler { return authlimit.WithFailureAnswer(h, b, c.Serializer) },
	}
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
