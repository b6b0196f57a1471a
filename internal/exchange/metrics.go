package exchange

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kip-proxy/kip/internal/metrics"
)

// recordOutcome counts what one exchange that reached the token check, or
// failed before it, came to.
func recordOutcome(tokenFailed bool, err *apierrors.StatusError) {
	switch {
	case err != nil && err.ErrStatus.Code >= http.StatusInternalServerError:
		metrics.ExchangeFailed(metrics.ExchangeInternal)
	case err != nil:
		metrics.ExchangeFailed(metrics.ExchangeInvalid)
	case tokenFailed:
		metrics.ExchangeFailed(metrics.ExchangeAuthentication)
	default:
		metrics.ExchangeIssued()
	}
}
