package authlimit

import (
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/utils/clock"

	"github.com/kip-proxy/kip/internal/metrics"
)

// Defaults of Config, for `kip serve`'s flags.
const (
	// DefaultFailureBurst and DefaultFailureInterval let an address fail
	// 100 times in a row and 10 times a second after that: room for a
	// NAT with many users, while one address alone can cause at most
	// that many checks.
	DefaultFailureBurst    = 100
	DefaultFailureInterval = 100 * time.Millisecond
	// DefaultRefusedTokenTTL remembers a refused token for a few seconds:
	// long enough to absorb a client retrying a bad token in a loop, short
	// enough that a token just made valid works almost at once.
	DefaultRefusedTokenTTL = 5 * time.Second
	// DefaultMaxOutboundReviews bounds the reviews kip has in flight to
	// authenticate callers, across the webhook and every upstream.
	DefaultMaxOutboundReviews = 16
	// ReviewWait is how long a caller waits for a review slot before it is
	// answered 429.
	ReviewWait = time.Second
)

// Config sizes the limits on failed authentication, as `kip serve`'s flags
// give them.
type Config struct {
	// FailureBurst and FailureInterval are the budget of failed
	// authentication per address; a burst of 0 turns it off.
	FailureBurst    int
	FailureInterval time.Duration
	// RefusedTokenTTL is how long a refused token is refused from memory;
	// 0 remembers nothing.
	RefusedTokenTTL time.Duration
	// MaxOutboundReviews bounds the outbound reviews in flight; 0 does not.
	MaxOutboundReviews int
}

// Limits are the limits Config describes, built once per process.
type Limits struct {
	Budget  *Budget
	Reviews *Reviews
	// RefusedTokenTTL is for RefusedTokens, which each authenticator
	// builds for itself: a token refused at one cluster may be good at
	// another.
	RefusedTokenTTL time.Duration
	Metrics         *metrics.AuthLimits
}

// New builds the limits c describes, counting into m.
func New(c Config, m *metrics.AuthLimits) *Limits {
	return &Limits{
		Budget:          NewBudget(BudgetConfig{Burst: c.FailureBurst, Interval: c.FailureInterval, Metrics: m}),
		Reviews:         NewReviews(c.MaxOutboundReviews, ReviewWait, m),
		RefusedTokenTTL: c.RefusedTokenTTL,
		Metrics:         m,
	}
}

// LimitReviews is Reviews.Limit; a nil Limits leaves tokens as they are.
func (l *Limits) LimitReviews(kind string, tokens authenticator.Token) authenticator.Token {
	if l == nil {
		return tokens
	}
	return l.Reviews.Limit(kind, tokens)
}

// RememberRefusals is RefusedTokens with a cache of its own; a nil Limits
// remembers nothing.
func (l *Limits) RememberRefusals(tokens authenticator.Token) authenticator.Token {
	if l == nil {
		return tokens
	}
	return RefusedTokens(tokens, l.RefusedTokenTTL, clock.RealClock{}, l.Metrics)
}
