package caller

import (
	"context"
	"net/http"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

type originalUserKey struct{}

// WithOriginalUser remembers the authenticated user before the impersonation
// filter swaps in the user the caller asked to act as. It must sit between
// authentication and impersonation in the chain.
func WithOriginalUser(handler http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := request.UserFrom(r.Context()); ok {
			r = r.WithContext(context.WithValue(r.Context(), originalUserKey{}, u))
		}
		handler.ServeHTTP(w, r)
	})
}

// OriginalUserFrom returns the user that authenticated at kip, before any
// nested impersonation.
func OriginalUserFrom(ctx context.Context) (user.Info, bool) {
	u, ok := ctx.Value(originalUserKey{}).(user.Info)
	return u, ok
}
