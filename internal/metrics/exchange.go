package metrics

// ExchangeFailure is why a credential exchange issued nothing.
type ExchangeFailure string

// The reasons of kip_exchange_failures_total.
const (
	// ExchangeAuthentication: the token was refused.
	ExchangeAuthentication ExchangeFailure = "authentication"
	// ExchangeInvalid: the request was malformed.
	ExchangeInvalid ExchangeFailure = "invalid"
	// ExchangeRateLimited: the address had spent its failure budget, or
	// kip had no outbound review slot free to check the token.
	ExchangeRateLimited ExchangeFailure = "rate_limited"
	// ExchangeInternal: kip could not sign.
	ExchangeInternal ExchangeFailure = "internal"
)

// ExchangeIssued counts one certificate issued by the credential exchange.
func (r *Recorder) ExchangeIssued() {
	if r == nil {
		return
	}
	r.exchangeIssued.Inc()
}

// ExchangeFailed counts one credential exchange that issued nothing.
func (r *Recorder) ExchangeFailed(reason ExchangeFailure) {
	if r == nil {
		return
	}
	r.exchangeFailures.WithLabelValues(string(reason)).Inc()
}
