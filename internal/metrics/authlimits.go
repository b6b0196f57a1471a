package metrics

import "k8s.io/component-base/metrics"

// The values of kip_authentication_throttled_total's reason label.
const (
	// ThrottledFailureBudget: the caller's address had spent its budget of
	// failed authentication.
	ThrottledFailureBudget = "failure_budget"
	// ThrottledReviewsBusy: every slot for outbound reviews stayed taken
	// for as long as the caller could wait.
	ThrottledReviewsBusy = "reviews_busy"
)

// The values of the kind label of kip_authentication_outbound_reviews_*.
const (
	// ReviewWebhook is a TokenReview sent to the token webhook.
	ReviewWebhook = "webhook"
	// ReviewTokenReview is a TokenReview sent to the upstream.
	ReviewTokenReview = "tokenreview"
)

// AuthLimits records what bounds failed authentication: requests
// answered 429 before or during authentication, refusals answered from
// the negative cache, and the outbound reviews made for callers.
//
// Every method is a no-op on a nil *AuthLimits.
type AuthLimits struct {
	throttled                      *metrics.CounterVec
	cacheHits                      *metrics.Counter
	inFlight                       *metrics.GaugeVec
	reviewsTotal                   *metrics.CounterVec
	waiting                        *metrics.Gauge
	throttledBudget, throttledBusy metrics.CounterMetric
	// kinds holds each kind's series, resolved once.
	kinds map[string]reviewSeries
}

type reviewSeries struct {
	total    metrics.CounterMetric
	inFlight metrics.GaugeMetric
}

// AuthLimits is the recorder of authentication limits; nil for a nil
// Recorder, which records nothing.
func (r *Recorder) AuthLimits() *AuthLimits {
	if r == nil {
		return nil
	}
	return r.authLimits
}

func (r *Recorder) declareAuthLimits() {
	a := &AuthLimits{
		throttled: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace:      namespace,
			Name:           "authentication_throttled_total",
			Help:           "Requests with a bearer token answered 429 instead of being authenticated, by reason: failure_budget (the address had spent its budget of failed authentication; no credential was checked) or reviews_busy (no slot for an outbound review came free in time).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"reason"}),
		cacheHits: metrics.NewCounter(&metrics.CounterOpts{
			Namespace:      namespace,
			Name:           "authentication_refused_cache_hits_total",
			Help:           "Bearer tokens refused from the cache of tokens just refused, without asking the webhook or the upstream again.",
			StabilityLevel: metrics.ALPHA,
		}),
		reviewsTotal: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace:      namespace,
			Name:           "authentication_outbound_reviews_total",
			Help:           "TokenReviews kip sent to authenticate callers, by kind: webhook (the token webhook) or tokenreview (the upstream). Retries within one review are not counted again.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"kind"}),
		inFlight: metrics.NewGaugeVec(&metrics.GaugeOpts{
			Namespace:      namespace,
			Name:           "authentication_outbound_reviews_in_flight",
			Help:           "TokenReviews to authenticate callers in flight now, by kind: webhook or tokenreview. Bounded together by --max-outbound-authentication-reviews.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"kind"}),
		waiting: metrics.NewGauge(&metrics.GaugeOpts{
			Namespace:      namespace,
			Name:           "authentication_outbound_reviews_waiting",
			Help:           "Callers waiting for a slot to send a TokenReview, because --max-outbound-authentication-reviews are in flight.",
			StabilityLevel: metrics.ALPHA,
		}),
	}
	r.registry.MustRegister(a.throttled, a.cacheHits, a.reviewsTotal, a.inFlight, a.waiting)
	// Every label value is exposed from the start, so that a rate() over
	// what never happened reads 0, not absent.
	a.throttledBudget = a.throttled.WithLabelValues(ThrottledFailureBudget)
	a.throttledBusy = a.throttled.WithLabelValues(ThrottledReviewsBusy)
	a.kinds = map[string]reviewSeries{}
	for _, kind := range []string{ReviewWebhook, ReviewTokenReview} {
		a.kinds[kind] = reviewSeries{total: a.reviewsTotal.WithLabelValues(kind), inFlight: a.inFlight.WithLabelValues(kind)}
	}
	r.authLimits = a
}

// Throttled counts a request answered 429 for reason.
func (a *AuthLimits) Throttled(reason string) {
	if a == nil {
		return
	}
	switch reason {
	case ThrottledFailureBudget:
		a.throttledBudget.Inc()
	case ThrottledReviewsBusy:
		a.throttledBusy.Inc()
	}
}

// RefusedCacheHit counts a token refused from the negative cache.
func (a *AuthLimits) RefusedCacheHit() {
	if a == nil {
		return
	}
	a.cacheHits.Inc()
}

// ReviewStarted counts an outbound review of kind that took its slot.
func (a *AuthLimits) ReviewStarted(kind string) {
	if a == nil {
		return
	}
	if k, ok := a.kinds[kind]; ok {
		k.total.Inc()
		k.inFlight.Inc()
	}
}

// ReviewEnded gives back what ReviewStarted counted in flight.
func (a *AuthLimits) ReviewEnded(kind string) {
	if a == nil {
		return
	}
	if k, ok := a.kinds[kind]; ok {
		k.inFlight.Dec()
	}
}

// Waiting adds delta to the callers waiting for a slot.
func (a *AuthLimits) Waiting(delta int) {
	if a == nil {
		return
	}
	a.waiting.Add(float64(delta))
}
