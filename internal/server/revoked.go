package server

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"

	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/proxy"
	"github.com/kip-proxy/kip/internal/revocation"
	"github.com/kip-proxy/kip/internal/signer"
)

// withRevocableRequests registers each long-running request (a watch,
// logs -f, exec, attach, port-forward) with its authenticated caller and
// the certificate it authenticated with, so that a revocation of the
// caller, or kip ceasing to trust the certificate's CA, ends it: the
// stream as a finished response, the upgraded connection cut. A short
// request needs none: it ends on its own deadline, and the next one is
// refused. ended hears of each request running ended, and why.
func withRevocableRequests(h http.Handler, running *revocation.Running, longRunning func(*http.Request) bool, ended func(reason string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := apirequest.UserFrom(r.Context())
		if !ok || !longRunning(r) {
			h.ServeHTTP(w, r)
			return
		}
		end, done := running.Track(u, authenticatedLeaf(r, u))
		defer done()
		var counted func()
		if ended != nil {
			counted = func() { ended(endReason(end)) }
		}
		r, stop := proxy.EndWith(r, end, counted)
		defer stop()
		h.ServeHTTP(w, r)
	})
}

// authenticatedLeaf is the client certificate r authenticated with: the
// leaf it presented, when u's credential-id names that certificate. A
// caller that presented a certificate yet authenticated with a token gets
// nil.
func authenticatedLeaf(r *http.Request, u user.Info) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	leaf := r.TLS.PeerCertificates[0]
	if !slices.Contains(u.GetExtra()[user.CredentialIDKey], signer.CredentialID(leaf.Raw)) {
		return nil
	}
	return leaf
}

// endReason is the kip_longrunning_ended_total reason for why running
// ended a request.
func endReason(end context.Context) string {
	if errors.Is(context.Cause(end), revocation.ErrCAUntrusted) {
		return proxy.EndCAUntrusted
	}
	return proxy.EndRevoked
}
