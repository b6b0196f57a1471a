package server

import (
	"net/http"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// withClientCAsLoaded answers a request that presents a client certificate
// with 503 and Retry-After until every CA source kip trusts has loaded.
// kip's port opens a few milliseconds before the cluster's client-CA
// ConfigMap or the signer CA is read, and in that window a valid
// certificate would get 401, which a client does not retry and an exec
// plugin takes as a reason to sign in again. Once all sources have loaded
// they never become empty again, so the check is then one atomic load.
func withClientCAsLoaded(h http.Handler, sources []dynamiccertificates.CAContentProvider, s runtime.NegotiatedSerializer) http.Handler {
	if len(sources) == 0 {
		return h
	}
	var loaded atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loaded.Load() || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			h.ServeHTTP(w, r)
			return
		}
		if len(notLoaded(sources)) > 0 {
			err := apierrors.NewServiceUnavailable("kip is still loading the CAs it trusts for client certificates; try again")
			err.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
			responsewriters.ErrorNegotiated(err, s, schema.GroupVersion{}, w, r)
			return
		}
		loaded.Store(true)
		h.ServeHTTP(w, r)
	})
}
