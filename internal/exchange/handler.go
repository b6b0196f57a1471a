package exchange

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/headers"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/ratelimit"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// handler serves POSTs of TokenCredentialRequests.
type handler struct {
	tokens       authenticator.Token
	audiences    authenticator.Audiences
	issuer       Issuer
	ttl          time.Duration
	tokenTimeout time.Duration
	decoder      runtime.Decoder
	failures     *ratelimit.Failures
	outcomes     Outcomes
}

func newHandler(c Config) (*handler, error) {
	decoder, err := newDecoder()
	if err != nil {
		return nil, err
	}
	return &handler{
		tokens:       c.Tokens,
		audiences:    c.APIAudiences,
		issuer:       c.Issuer,
		ttl:          c.TTL,
		tokenTimeout: c.TokenTimeout,
		decoder:      decoder,
		failures:     ratelimit.NewFailures(c.FailureBurst, c.FailureInterval, c.MaxClients, c.Clock),
		outcomes:     c.Outcomes,
	}, nil
}

// ServeHTTP refuses what is not an exchange before it costs a unit of the
// caller's failure budget, then exchanges with that unit taken, so that
// concurrent guesses from one address cannot outrun the budget.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A credential must not be kept by any cache, and neither should the
	// answer that none was issued.
	w.Header().Set("Cache-Control", "no-store")
	if r.ProtoMajor == 2 {
		// The caller is not authenticated, and an HTTP/2 connection costs
		// a server more than HTTP/1.1's and is prone to abuse
		// (CVE-2023-44487, CVE-2023-39325). As kube-apiserver does for
		// unauthenticated callers (UnauthenticatedHTTP2DOSMitigation), the
		// connection serves this one request: Go's server answers, then
		// sends GOAWAY and closes it. A client loses nothing: with its new
		// certificate it needs a new connection anyway.
		w.Header().Set("Connection", "close")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, apierrors.NewMethodNotSupported(loginv1alpha1.SchemeGroupVersion.WithResource(loginv1alpha1.Resource).GroupResource(), r.Method))
		h.outcomes.ExchangeFailed(metrics.ExchangeInvalid)
		return
	}
	if name, found := headers.FindImpersonation(r.Header); found {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the credential exchange does not impersonate: remove the %s header (kubectl --as) and exchange your own token", name)))
		h.outcomes.ExchangeFailed(metrics.ExchangeInvalid)
		return
	}
	client := ratelimit.ClientKey(r.RemoteAddr)
	if wait, ok := h.failures.Take(client); !ok {
		writeStatus(w, tooManyFailures(wait))
		h.outcomes.ExchangeFailed(metrics.ExchangeRateLimited)
		return
	}
	answer, tokenFailed, err := h.exchange(w, r)
	h.recordOutcome(tokenFailed, err)
	if !tokenFailed {
		h.failures.Refund(client)
	}
	if err != nil {
		writeStatus(w, err)
		return
	}
	writeObject(w, http.StatusCreated, answer)
}

// exchange reads, checks and answers one request. tokenFailed reports a
// token the authenticator did not accept: only that spends the budget.
func (h *handler) exchange(w http.ResponseWriter, r *http.Request) (answer *loginv1alpha1.TokenCredentialRequest, tokenFailed bool, _ *apierrors.StatusError) {
	req, se := h.readRequest(w, r)
	if se != nil {
		return nil, false, se
	}
	pub, se := validate(req)
	if se != nil {
		return nil, false, se
	}
	u, err := h.authenticate(r.Context(), req.Spec.Token)
	if errors.Is(err, authlimit.ErrBusy) {
		// The token was not checked: kip had no outbound review slot free
		// in time. A 429 lets the client retry (client-go does so by
		// itself) instead of telling its user that they failed to sign in,
		// and costs the address nothing.
		auditNotIssued(r.Context(), outcomeNotChecked)
		return nil, false, authlimit.BusyStatus()
	}
	if err != nil {
		logTokenFailure(r, err)
		auditNotIssued(r.Context(), outcomeRefused)
		return refused(req), true, nil
	}
	cred, err := h.issue(u, pub)
	if err != nil {
		klog.ErrorS(err, "Credential exchange could not issue a certificate", "user", u.GetName(), "remoteAddr", r.RemoteAddr)
		return nil, false, apierrors.NewInternalError(errors.New("kip could not sign a certificate; try again, and if it persists ask kip's operator, whose log has the cause"))
	}
	klog.InfoS("Credential exchange issued a certificate", "user", u.GetName(), "expires", cred.ExpirationTimestamp.Time, "generatedKey", pub == nil, "remoteAddr", r.RemoteAddr)
	auditIssued(r.Context(), u, []byte(cred.ClientCertificateData))
	return succeeded(req, cred), false, nil
}
