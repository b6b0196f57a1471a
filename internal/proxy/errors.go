package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
