package server

import (
	"net/http"

	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"

	"github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/identity"
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

// buildHandlerChain is kip's request path, read from the proxy outwards:
// each line wraps the ones above it, so a request meets them bottom to top.
// It follows k8s.io/apiserver's DefaultBuildHandlerChain, without what only
// a storage-backed server needs, and with the original caller remembered
// before nested impersonation replaces it.
//
// exchange, when kip has one, answers the credential exchange before
// authentication: it is the one resource an unauthenticated caller may
// reach, and it authenticates the token in its body itself.
func buildHandlerChain(proxy, exchangeHandler http.Handler, c *genericapiserver.Config, obs observability) http.Handler {
	h := proxy
	h = obs.measureUpstream(h)
	h = genericapifilters.WithAuthorization(h, c.Authorization.Authorizer, c.Serializer)
	h = genericfilters.WithMaxInFlightLimit(h, c.MaxRequestsInFlight, c.MaxMutatingRequestsInFlight, c.LongRunningFunc)
	h = withUnusedImpersonationRefused(h, c.Serializer)
	h = obs.noteUser(h) // the impersonated user, with kubectl --as
	h = impersonation.WithImpersonation(h, c.Authorization.Authorizer, c.Serializer)
	h = obs.noteUser(h) // the authenticated caller
	h = identity.WithOriginalUser(h)
	h = genericapifilters.WithAudit(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc)

	failed := genericapifilters.Unauthorized(c.Serializer)
	failed = genericapifilters.WithFailedAuthenticationAudit(failed, c.AuditBackend, c.AuditPolicyRuleEvaluator)
	// No front-proxy request-header configuration: kip never trusts
	// X-Remote-* headers from anyone.
	h = genericapifilters.WithAuthentication(h, c.Authentication.Authenticator, failed, c.Authentication.APIAudiences, nil)
	if exchangeHandler != nil {
		h = exchange.WithExchange(h, exchangeHandler)
	}

	h = genericapifilters.WithWarningRecorder(h)
	// The request deadline bounds every short request: the upstream call
	// carries it, and the proxy answers 504 when it passes. The generic
	// server's timeout filter would add a goroutine, a timer and a
	// preformatted error to every request to do the same again.
	h = genericapifilters.WithRequestDeadline(h, c.AuditBackend, c.AuditPolicyRuleEvaluator, c.LongRunningFunc, c.Serializer, c.RequestTimeout)
	h = genericfilters.WithWaitGroup(h, c.LongRunningFunc, c.NonLongRunningRequestWaitGroup)
	h = genericfilters.WithHSTS(h, c.HSTSDirectives)
	h = genericfilters.WithHTTPLogging(h)
	h = obs.logAccess(h)
	h = obs.countRequests(h)
	h = genericapifilters.WithRequestInfo(h, c.RequestInfoResolver)
	h = genericapifilters.WithRequestReceivedTimestamp(h)
	h = genericfilters.WithPanicRecovery(h, c.RequestInfoResolver)
	h = genericapifilters.WithAuditInit(h)
	h = withGrownStack(h)
	return h
}
