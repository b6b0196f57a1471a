package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
)

// upstreamError turns a failure to reach the upstream into the Status a
// client can act on: 503 while it cannot be reached, 504 when it is too
// slow, 502 for anything else it did wrong.
func upstreamError(err error, upstream string) *apierrors.StatusError {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return apierrors.NewTimeoutError(fmt.Sprintf("the upstream API server %s did not answer in time", upstream), 0)
	case isHeaderListTooLarge(err):
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusRequestHeaderFieldsTooLarge,
			Message: fmt.Sprintf("the request's headers are larger than the upstream API server %s accepts; send fewer or shorter headers", upstream),
		}}
	case isUnreachable(err):
		return apierrors.NewServiceUnavailable(fmt.Sprintf("the upstream API server %s is unavailable: %v", upstream, err))
	default:
		se := apierrors.NewInternalError(fmt.Errorf("the upstream API server %s: %w", upstream, err))
		se.ErrStatus.Code = http.StatusBadGateway
		se.ErrStatus.Reason = "BadGateway"
		se.ErrStatus.Message = fmt.Sprintf("bad gateway: the upstream API server %s: %v", upstream, err)
		return se
	}
}

// isHeaderListTooLarge spots the HTTP/2 transport refusing to send headers
// over the upstream's advertised limit. kip's own server reads a few KiB
// past its limit, so such a request reaches the proxy; it is the caller's
// fault, not a bad gateway. The error is unexported in both HTTP/2
// implementations, hence the match on its text.
func isHeaderListTooLarge(err error) bool {
	return err != nil && strings.Contains(err.Error(), "request header list larger than")
}

func isUnreachable(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EHOSTUNREACH)
}

// writeStatus answers with a metav1.Status body, as kube-apiserver does, so
// kubectl shows the message. The body needs kind and apiVersion: without them
// client-go cannot decode it and shows only a generic error.
func writeStatus(w http.ResponseWriter, se *apierrors.StatusError) {
	status := responsewriters.ErrorToAPIStatus(se)
	responsewriters.WriteRawJSON(int(status.Code), status, w)
}
