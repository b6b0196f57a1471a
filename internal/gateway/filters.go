package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kip-proxy/kip/internal/proxy"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

// AuditAnnotation is the key under which kip's audit events name the
// cluster a request was for.
const AuditAnnotation = "kip.dev/cluster"

// errNoCluster is what the per-cluster steps answer for a request that
// reached them without one: only a wiring mistake can cause it, and kip
// refuses rather than guess a cluster.
var errNoCluster = errors.New("the request reached a per-cluster step without a cluster")

// WithBackend gives the request its cluster's backend, which the
// authenticator, the authorizer and the proxy step then use. It answers
// 404 for a request without a cluster, and 503 while the cluster cannot be
// reached: fast, without waiting on it, once it is known to be down. It
// runs before authentication, because who a caller is depends on the
// cluster (its client CA, its TokenReview). A long-running request (a
// watch, exec, logs -f) ends when the cluster is removed or its entry
// replaced.
func (u *Upstreams) WithBackend(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := r.Context().Value(routeKey{}).(*route)
		if !ok {
			notFound(w, "kip serves each cluster at /clusters/<name>/")
			return
		}
		name := rt.name
		// kip's audit log names the cluster of every event, refusals
		// included; the path it records is the cluster's.
		audit.AddAuditAnnotation(r.Context(), AuditAnnotation, name)
		m := u.get(name)
		if m == nil {
			notFound(w, fmt.Sprintf("kip fronts no cluster %q", name))
			return
		}
		b, err := m.backend(u.build)
		if err != nil {
			unavailable(w, fmt.Sprintf("kip cannot serve cluster %q: its entry is unusable; ask kip's operator, whose log has the cause", name))
			return
		}
		if err := m.contact(r.Context(), b); err != nil {
			unavailable(w, fmt.Sprintf("cluster %q is unreachable: %v", name, err))
			return
		}
		// The route is this request's own, so setting its backend here,
		// before the request goes on, is seen by every later step.
		rt.m, rt.b = m, b
		if u.longRunning != nil && !u.longRunning(r) {
			// A short request ends on its own deadline; tying it to the
			// cluster's lifetime would cost every request a context and a
			// registration on the cluster's.
			h.ServeHTTP(w, r)
			return
		}
		// A stream ends as a finished response, so that a watch starts
		// over and learns the cluster is gone.
		r, stop := proxy.EndWith(r, m.ctx, u.removedEnded)
		defer stop()
		h.ServeHTTP(w, r)
	})
}

// contact admits the request under the cluster's health, checking the
// cluster first when health says so.
func (m *member) contact(ctx context.Context, b *Backend) error {
	adm, err := m.health.admit()
	switch adm {
	case pass:
		return nil
	case refuse:
		return err
	}
	if err := b.Check(ctx); err != nil {
		if ctx.Err() == nil {
			m.health.Failed(err)
		}
		return err
	}
	m.health.Succeeded()
	return nil
}

// WithPolicy refuses, with 403, a caller the cluster's access policy does
// not let in, before anything is forwarded to the cluster (not even the
// SubjectAccessReview that impersonation asks for). It reads the caller
// authentication found, so it runs after authentication and before
// impersonation: kubectl --as does not change who is reaching the cluster.
func WithPolicy(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := routedFrom(r.Context())
		usr, hasUser := request.UserFrom(r.Context())
		if !ok || !hasUser {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, errNoCluster.Error())
			return
		}
		allowed, err := rt.m.cluster.Policy.Allows(usr)
		if err != nil {
			klog.ErrorS(err, "The access policy of a cluster failed; refusing", "cluster", rt.m.cluster.Name, "user", usr.GetName())
		}
		if !allowed {
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
				fmt.Sprintf("%q may not reach cluster %q through kip: its access policy does not let you in", usr.GetName(), rt.m.cluster.Name))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Authenticator authenticates with the backend of the request's cluster.
func (u *Upstreams) Authenticator() authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		rt, ok := routedFrom(r.Context())
		if !ok {
			return nil, false, errNoCluster
		}
		return rt.b.Authenticator.AuthenticateRequest(r)
	})
}

// Authorizer asks the request's cluster, and denies without one.
func (u *Upstreams) Authorizer() authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		rt, ok := routedFrom(ctx)
		if !ok {
			return authorizer.DecisionDeny, errNoCluster.Error(), nil
		}
		return rt.b.Authorizer.Authorize(ctx, a)
	})
}

// ServeHTTP forwards the request to its cluster with the proxy of that
// cluster's backend.
func (u *Upstreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := routedFrom(r.Context())
	if !ok {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, errNoCluster.Error())
		return
	}
	rt.b.Proxy.ServeHTTP(w, r)
}

func unavailable(w http.ResponseWriter, msg string) {
	writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, msg)
}
