package exchange

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kip-proxy/kip/internal/metrics"
)

// Outcomes counts what exchanges come to. kip's *metrics.Recorder is one.
type Outcomes interface {
	ExchangeIssued()
	ExchangeFailed(reason metrics.ExchangeFailure)
}

// uncounted is the Outcomes of an exchange built without Config.Outcomes,
// as unit tests that do not look at metrics build it.
type uncounted struct{}

func (uncounted) ExchangeIssued()                        {}
func (uncounted) ExchangeFailed(metrics.ExchangeFailure) {}

// recordOutcome counts what one exchange that reached the token check, or
// failed before it, came to.
func (h *handler) recordOutcome(tokenFailed bool, err *apierrors.StatusError) {
	switch {
	case err != nil && err.ErrStatus.Code >= http.StatusInternalServerError:
		h.outcomes.ExchangeFailed(metrics.ExchangeInternal)
	case err != nil && err.ErrStatus.Code == http.StatusTooManyRequests:
		h.outcomes.ExchangeFailed(metrics.ExchangeRateLimited)
	case err != nil:
		h.outcomes.ExchangeFailed(metrics.ExchangeInvalid)
	case tokenFailed:
		h.outcomes.ExchangeFailed(metrics.ExchangeAuthentication)
	default:
		h.outcomes.ExchangeIssued()
	}
}
