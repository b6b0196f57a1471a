package authlimit

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/kip-proxy/kip/internal/metrics"
)

// ErrBusy is the error of a token that was not checked because no
// outbound review slot came free in time.
var ErrBusy = errors.New("kip is checking too many credentials at once")

// BusyStatus is the answer to a request whose token was not checked for
// ErrBusy: 429 with Retry-After: 1, so that the caller retries (client-go
// does so by itself) rather than sign in again.
func BusyStatus() *apierrors.StatusError {
	return apierrors.NewTooManyRequests(ErrBusy.Error()+"; try again in a second", 1)
}

// Reviews bounds the outbound reviews in flight that kip makes to
// authenticate callers: webhook calls and TokenReviews to the upstream,
// together, across every cluster. One Reviews is shared by the whole
// process.
type Reviews struct {
	// slots is a semaphore; nil counts without bounding.
	slots   chan struct{}
	wait    time.Duration
	metrics *metrics.AuthLimits
}

// NewReviews allows max reviews in flight (0: no bound); a caller waits at
// most wait for a slot.
func NewReviews(max int, wait time.Duration, m *metrics.AuthLimits) *Reviews {
	r := &Reviews{wait: wait, metrics: m}
	if max > 0 {
		r.slots = make(chan struct{}, max)
	}
	return r
}

// Limit makes each check of tokens, one outbound review of kind
// (metrics.ReviewWebhook, metrics.ReviewTokenReview), take a slot first.
// Without a slot in time the token is not checked: the check fails with
// ErrBusy, and the request is answered 429 (see WithFailureAnswer). A nil
// Reviews returns tokens as they are.
func (r *Reviews) Limit(kind string, tokens authenticator.Token) authenticator.Token {
	if r == nil {
		return tokens
	}
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		if !r.acquire(ctx) {
			markBusy(ctx)
			return nil, false, ErrBusy
		}
		defer r.release()
		r.metrics.ReviewStarted(kind)
		defer r.metrics.ReviewEnded(kind)
		return tokens.AuthenticateToken(ctx, token)
	})
}

// acquire takes a slot, waiting at most r.wait, and no longer than ctx.
func (r *Reviews) acquire(ctx context.Context) bool {
	if r.slots == nil {
		return true
	}
	select {
	case r.slots <- struct{}{}:
		return true
	default:
	}
	r.metrics.Waiting(1)
	defer r.metrics.Waiting(-1)
	timer := time.NewTimer(r.wait)
	defer timer.Stop()
	select {
	case r.slots <- struct{}{}:
		return true
	case <-timer.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (r *Reviews) release() {
	if r.slots != nil {
		<-r.slots
	}
}
