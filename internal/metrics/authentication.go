package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/component-base/metrics"
)

// The methods of kip_authentication_attempts_total that a caller of this
// package names; x509 and none are counted by CountRefusals.
const (
	MethodX509Signer   = "x509_signer"
	MethodX509ClientCA = "x509_client_ca"
	MethodOIDC         = "oidc"
	MethodWebhook      = "webhook"
	MethodTokenReview  = "tokenreview"

	methodX509 = "x509"
	methodNone = "none"
)

// Result is how one credential check ended.
type Result string

// The results of kip_authentication_attempts_total.
const (
	Success Result = resultSuccess
	Failure Result = resultFailure
	Error   Result = resultError
)

// attempts holds one method's counters, resolved once.
type attempts struct {
	success, failure, err metrics.CounterMetric
}

func (r *Recorder) attempts(method string) attempts {
	return attempts{
		success: r.authenticationAttempts.WithLabelValues(method, resultSuccess),
		failure: r.authenticationAttempts.WithLabelValues(method, resultFailure),
		err:     r.authenticationAttempts.WithLabelValues(method, resultError),
	}
}

func (a attempts) record(r Result) {
	switch r {
	case Success:
		a.success.Inc()
	case Failure:
		a.failure.Inc()
	case Error:
		a.err.Inc()
	}
}

// CountAcceptedCertificates counts the client certificates that one CA's
// authenticator accepts. Its refusals are not counted here: kip asks each
// CA in turn, and a certificate another CA signed is refused by all but
// that one. CountRefusals counts a certificate that every CA refused.
// A nil Recorder returns certs as they are.
func (r *Recorder) CountAcceptedCertificates(method string, certs authenticator.Request) authenticator.Request {
	if r == nil {
		return certs
	}
	counted := r.attempts(method)
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := certs.AuthenticateRequest(req)
		if ok && err == nil {
			counted.success.Inc()
		}
		return resp, ok, err
	})
}

// CountTokens counts what one token verifier decides. An error is a
// refusal or a verifier that could not decide, as classify says (a
// failure when classify is nil). When the verifier is the last one asked
// (final), its "no" is a failure; otherwise a "no" means the token is not
// one it knows, and the next verifier decides. A nil Recorder returns
// tokens as they are.
func (r *Recorder) CountTokens(method string, tokens authenticator.Token, classify func(error) Result, final bool) authenticator.Token {
	if r == nil {
		return tokens
	}
	counted := r.attempts(method)
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		resp, ok, err := tokens.AuthenticateToken(ctx, token)
		switch {
		case err != nil && classify != nil:
			counted.record(classify(err))
		case err != nil:
			counted.failure.Inc()
		case ok:
			counted.success.Inc()
		case final:
			counted.failure.Inc()
		}
		return resp, ok, err
	})
}

// ReviewResult classifies the error of a TokenReview, to kip's upstream or
// to a webhook: one that could not be made (unreachable, timed out, an
// error status) is an error; one that was answered with a refusal and a
// message (status.error) is a failure.
func ReviewResult(err error) Result {
	var status apierrors.APIStatus
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &status) || errors.As(err, &urlErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Error
	}
	return Failure
}

// CountRefusals counts the requests that the whole of kip's authenticator
// refused without any token verifier having decided: a certificate no
// trusted CA accepted (x509), or no credentials at all (none). A refused
// bearer token was already counted by the verifier that refused it. A nil
// Recorder returns all as it is.
func (r *Recorder) CountRefusals(all authenticator.Request) authenticator.Request {
	if r == nil {
		return all
	}
	x509, none := r.attempts(methodX509), r.attempts(methodNone)
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := all.AuthenticateRequest(req)
		if ok && err == nil || hasBearerToken(req) {
			return resp, ok, err
		}
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			x509.failure.Inc()
		} else {
			none.failure.Inc()
		}
		return resp, ok, err
	})
}

// hasBearerToken reports whether a request carries a token where kip's
// authenticator looks for one: the Authorization header or the WebSocket
// bearer subprotocol.
func hasBearerToken(req *http.Request) bool {
	scheme, token, _ := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	if strings.EqualFold(scheme, "bearer") && strings.TrimSpace(token) != "" {
		return true
	}
	for _, p := range req.Header.Values("Sec-WebSocket-Protocol") {
		if strings.Contains(p, "base64url.bearer.authorization.k8s.io.") {
			return true
		}
	}
	return false
}
