package server

import (
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
)

// withUnusedImpersonationRefused answers 400 for any Impersonate-* header
// the impersonation filter did not act on: an empty value, an unknown name,
// or a letter case Go did not canonicalize. Such a header is the caller's
// mistake or probe, so it gets a Status the caller can act on, not the 500
// with which the proxy step fails closed when a header slips past.
func withUnusedImpersonationRefused(handler http.Handler, s runtime.NegotiatedSerializer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "impersonate-") {
				err := apierrors.NewBadRequest(fmt.Sprintf("impersonation header %q is empty or not supported", name))
				responsewriters.ErrorNegotiated(err, s, schema.GroupVersion{Version: "v1"}, w, r)
				return
			}
		}
		handler.ServeHTTP(w, r)
	})
}
