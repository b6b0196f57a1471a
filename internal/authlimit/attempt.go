package authlimit

import (
	"context"
	"crypto/sha256"
	"sync/atomic"
)

// attempt is one request's authentication as the limits see it: the unit
// it took, and whether a review slot was refused to it.
type attempt struct {
	budget *Budget
	// hash is the SHA-256 of the token; the token itself is not kept.
	hash [sha256.Size]byte
	// client and took: the address whose unit was taken, if one was.
	client string
	took   bool
	// busy is set when no outbound review slot came free in time.
	busy atomic.Bool
}

type attemptKey struct{}

func withAttempt(ctx context.Context, a *attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

func attemptFrom(ctx context.Context) (*attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(*attempt)
	return a, ok
}

// markBusy records, for the failed handler, that ctx's request could not
// be checked for want of a review slot. It does nothing outside a request
// (the credential exchange checks its tokens itself).
func markBusy(ctx context.Context) {
	if a, ok := attemptFrom(ctx); ok {
		a.busy.Store(true)
	}
}

// succeeded gives back the unit taken and remembers the token as good,
// unless the request also carried a client certificate: kip tries
// certificates first, so the token may never have been checked.
func (a *attempt) succeeded(withCertificate bool) {
	if !a.took {
		return
	}
	a.took = false
	a.budget.failures.Refund(a.client)
	if !withCertificate {
		a.budget.knownGood.Add(a.hash, struct{}{}, knownGoodTTL)
	}
}

// failed forgets the token as good: a revoked token spends like any other.
func (a *attempt) failed() {
	if a.budget.knownGood != nil {
		a.budget.knownGood.Remove(a.hash)
	}
}
