package gateway

import (
	"context"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"

	"github.com/kip-proxy/kip/internal/clusters"
)

type routeKey struct{}

// route is where a request goes: the cluster routing read from its path,
// and, once WithBackend has chosen them, the cluster's registry entry and
// backend. One value in the context for all three keeps every lookup of
// the chain one step shorter than two would.
type route struct {
	name string
	m    *member
	b    *Backend
}

// WithCluster records the cluster a request is addressed to.
func WithCluster(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, routeKey{}, &route{name: name})
}

// ClusterFrom returns the cluster WithRouting recorded.
func ClusterFrom(ctx context.Context) (string, bool) {
	rt, ok := ctx.Value(routeKey{}).(*route)
	if !ok {
		return "", false
	}
	return rt.name, true
}

// WithRouting strips /clusters/<name> from every request whose cluster
// known reports, records the cluster, and hands the request on. A path
// that passthrough accepts (kip's own endpoints, such as the credential
// exchange) goes on unchanged and without a cluster. Anything else gets a
// 404 Status: an unknown cluster, a name that is not one, a path outside
// /clusters/, or one of kip's own paths under /clusters/<name>/.
func WithRouting(handler http.Handler, known func(string) bool, passthrough func(path string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if passthrough(r.URL.Path) {
			handler.ServeHTTP(w, r)
			return
		}
		// A copy of the URL only: the request itself is copied shallowly
		// below, as a deep Clone of its headers on every request would
		// cost for nothing.
		u := *r.URL
		name, err := clusters.Rewrite(&u)
		switch {
		case err != nil: // clusters.ErrNotRouted among them
			notFound(w, err.Error())
			return
		case !known(name):
			notFound(w, fmt.Sprintf("kip fronts no cluster %q", name))
			return
		case passthrough(u.Path):
			// kip's own endpoints have one spelling, at kip's root:
			// stripped of /clusters/<name>, the unauthenticated
			// exchange would be reached by a second path, with a
			// cluster recorded that it has nothing to do with.
			notFound(w, "kip's own API is served at kip's root, not under "+clusters.PathPrefix+name)
			return
		}
		routed := r.WithContext(WithCluster(r.Context(), name))
		routed.URL = &u
		// The request line, too, is what the cluster receives: the chain
		// and the audit log read it.
		routed.RequestURI = u.RequestURI()
		handler.ServeHTTP(w, routed)
	})
}

func notFound(w http.ResponseWriter, msg string) {
	writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, msg)
}

// writeStatus answers with a Status, as the API server would.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	status := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
	responsewriters.WriteRawJSON(code, status, w)
}
