package exchange

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
)

// writeStatus answers with a metav1.Status, kind and apiVersion included,
// so that kubectl and client-go show its message.
func writeStatus(w http.ResponseWriter, se *apierrors.StatusError) {
	status := responsewriters.ErrorToAPIStatus(se)
	if d := status.Details; d != nil && d.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfterSeconds)))
	}
	responsewriters.WriteRawJSON(int(status.Code), status, w)
}

func writeObject(w http.ResponseWriter, code int, obj any) {
	responsewriters.WriteRawJSON(code, obj, w)
}

// tooManyFailures is the 429 for an address whose failure budget is spent.
// The wait is rounded up to whole seconds, as Retry-After counts them.
func tooManyFailures(wait time.Duration) *apierrors.StatusError {
	seconds := max(1, int(math.Ceil(wait.Seconds())))
	return apierrors.NewTooManyRequests(fmt.Sprintf("too many failed credential exchanges from your address; try again in %d seconds", seconds), seconds)
}
