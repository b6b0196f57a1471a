package exchange

import (
	"net/http"
	"net/url"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// Path is where kip serves the credential exchange.
const Path = "/apis/" + loginv1alpha1.GroupName + "/v1alpha1/" + loginv1alpha1.Resource

// WithExchange sends requests for exactly Path to exchange and everything
// else to next. Put it just outside authentication: it is how the exchange
// is reached without credentials, so it must not match anything more.
func WithExchange(next, exchange http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isExchangePath(r.URL) {
			exchange.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isExchangePath matches the path as the client spelled it, so that no
// cleaning or decoding (a dot segment, a doubled or encoded slash) can turn
// another request into an unauthenticated one. Those spellings go to
// authentication instead, where they fail closed.
func isExchangePath(u *url.URL) bool {
	return u != nil && u.Path == Path && u.EscapedPath() == Path
}
