package authlimit

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/utils/clock"

	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/ratelimit"
)

const (
	// maxClients bounds the table of addresses with failures, as the
	// exchange's does.
	maxClients = 10000
	// maxKnownGood bounds the tokens remembered as recently good.
	maxKnownGood = 10000
	// knownGoodTTL is how long a token that authenticated skips the
	// budget. It only spares the budget: the token is checked as always.
	knownGoodTTL = 10 * time.Minute
)

// BudgetConfig sizes the budget of failed authentication per address.
type BudgetConfig struct {
	// Burst is how many failures an address may have in a row; 0 turns
	// the budget off.
	Burst int
	// Interval is how long an address takes to earn one failure back.
	Interval time.Duration
	// Clock tells the time; a real clock when nil.
	Clock clock.Clock
	// Metrics counts the requests throttled. Nil counts nothing.
	Metrics *metrics.AuthLimits
}

// Budget is the budget of failed authentication of every address, and the
// tokens that authenticated recently and so skip it.
type Budget struct {
	failures  *ratelimit.Failures // nil when off
	knownGood *cache.LRUExpireCache
	metrics   *metrics.AuthLimits
}

// NewBudget builds the budget c describes.
func NewBudget(c BudgetConfig) *Budget {
	b := &Budget{metrics: c.Metrics}
	if c.Burst <= 0 {
		return b
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	b.failures = ratelimit.NewFailures(c.Burst, c.Interval, maxClients, c.Clock)
	b.knownGood = cache.NewLRUExpireCacheWithClock(maxKnownGood, c.Clock)
	return b
}

// WithFailureBudget takes a unit of the caller's budget before a request
// with a bearer token is authenticated, and answers 429 when there is none
// left, so that a spent address makes kip check nothing. Requests without
// a token are left alone: a missing credential or a client certificate is
// refused without any outbound call. It goes just outside authentication,
// with WithSuccessNoted just inside and WithFailureAnswer as the failed
// handler. audit wraps the 429 so that it is written to kip's audit log
// like a failed authentication: a flood shows there, not only in metrics.
func WithFailureBudget(h http.Handler, b *Budget, s runtime.NegotiatedSerializer, audit func(http.Handler) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		a := &attempt{budget: b, hash: sha256.Sum256([]byte(token))}
		if b.failures != nil && !b.isKnownGood(a.hash) {
			a.client = ratelimit.ClientKey(r.RemoteAddr)
			wait, ok := b.failures.Take(a.client)
			if !ok {
				b.metrics.Throttled(metrics.ThrottledFailureBudget)
				audit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					writeStatus(w, r, s, tooManyFailures(wait))
				})).ServeHTTP(w, r)
				return
			}
			a.took = true
		}
		h.ServeHTTP(w, r.WithContext(withAttempt(r.Context(), a)))
	})
}

// WithSuccessNoted gives the unit back as soon as the request has been
// authenticated, before it is served (a watch may last an hour), and
// remembers its token as good.
func WithSuccessNoted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := attemptFrom(r.Context()); ok {
			a.succeeded(r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
		}
		h.ServeHTTP(w, r)
	})
}

// WithFailureAnswer wraps the handler of failed authentication: a request
// whose token could not be checked because every outbound review slot
// stayed taken is answered 429 (the caller should retry, not sign in
// again); any other failure is failed's, and its token is no longer
// remembered as good.
func WithFailureAnswer(failed http.Handler, b *Budget, s runtime.NegotiatedSerializer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := attemptFrom(r.Context())
		if ok && a.busy.Load() {
			b.metrics.Throttled(metrics.ThrottledReviewsBusy)
			writeStatus(w, r, s, BusyStatus())
			return
		}
		if ok {
			a.failed()
		}
		failed.ServeHTTP(w, r)
	})
}

func (b *Budget) isKnownGood(hash [sha256.Size]byte) bool {
	_, ok := b.knownGood.Get(hash)
	return ok
}

func writeStatus(w http.ResponseWriter, r *http.Request, s runtime.NegotiatedSerializer, err *apierrors.StatusError) {
	responsewriters.ErrorNegotiated(err, s, schema.GroupVersion{}, w, r)
}

// tooManyFailures is the 429 for an address whose budget is spent. The
// wait is rounded up to whole seconds, as Retry-After counts them.
func tooManyFailures(wait time.Duration) *apierrors.StatusError {
	seconds := max(1, int(math.Ceil(wait.Seconds())))
	return apierrors.NewTooManyRequests(fmt.Sprintf("too many failed authentications from your address; try again in %d seconds", seconds), seconds)
}

// bearerToken is the token kip's authenticator would read: the
// Authorization header's bearer token, else a WebSocket bearer
// subprotocol.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if token = strings.TrimSpace(token); strings.EqualFold(scheme, "bearer") && token != "" {
		return token, true
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, "base64url.bearer.authorization.k8s.io.") {
				return p, true
			}
		}
	}
	return "", false
}
