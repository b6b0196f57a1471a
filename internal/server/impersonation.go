package server

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/headers"
)

// withUnusedImpersonationRefused answers 400 for any Impersonate-* header
// the impersonation filter did not act on (an empty value, an unknown name,
// a letter case Go did not canonicalize) and for an impersonated extra that
// forges kip's record of the original caller. Both are the caller's mistake
// or probe, so they get a Status the caller can act on, not the 500 with
// which the proxy step fails closed when something slips past.
func withUnusedImpersonationRefused(handler http.Handler, s runtime.NegotiatedSerializer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name := range r.Header {
			if headers.IsImpersonation(name) {
				err := apierrors.NewBadRequest(fmt.Sprintf("impersonation header %q is empty or not supported", name))
				responsewriters.ErrorNegotiated(err, s, schema.GroupVersion{Version: "v1"}, w, r)
				return
			}
		}
		if u, ok := request.UserFrom(r.Context()); ok && reservedExtra(u) {
			err := apierrors.NewBadRequest(fmt.Sprintf("the extra %q is reserved for kip's record of the original caller", headers.OriginalUserExtraKey))
			responsewriters.ErrorNegotiated(err, s, schema.GroupVersion{Version: "v1"}, w, r)
			return
		}
		handler.ServeHTTP(w, r)
	})
}

// reservedExtra reports whether a caller tried to set, through nested
// impersonation, the extra in which kip records the original caller.
func reservedExtra(u user.Info) bool {
	_, reserved := headers.ReservedExtra(u)
	return reserved
}
