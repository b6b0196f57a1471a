package authlimit

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/kip-proxy/kip/internal/metrics"
)

// maxRefused bounds the tokens remembered as refused, per authenticator.
const maxRefused = 10000

// refusal is a remembered "no": the error it came with, if any.
type refusal struct{ err error }

// RefusedTokens remembers for ttl the tokens that tokens refused, by the
// SHA-256 of each, and refuses them again without asking: a repeated bad
// token costs no outbound call. Only refusals are remembered: a verifier
// that could not decide (unreachable, timed out, no review slot free) is
// asked again next time, so an outage does not lock a user out. A ttl of 0
// remembers nothing.
func RefusedTokens(tokens authenticator.Token, ttl time.Duration, clock cache.Clock, m *metrics.AuthLimits) authenticator.Token {
	if ttl <= 0 {
		return tokens
	}
	refused := cache.NewLRUExpireCacheWithClock(maxRefused, clock)
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		key := sha256.Sum256([]byte(token))
		if v, ok := refused.Get(key); ok {
			m.RefusedCacheHit()
			return nil, false, v.(refusal).err
		}
		resp, ok, err := tokens.AuthenticateToken(ctx, token)
		if !ok && isRefusal(ctx, err) {
			refused.Add(key, refusal{err}, ttl)
		}
		return resp, ok, err
	})
}

// isRefusal tells a verifier's "no" from a verifier that could not decide.
// A review that was answered with a refusal and a message (status.error)
// is a refusal; one that could not be made is not.
func isRefusal(ctx context.Context, err error) bool {
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil, errors.Is(err, ErrBusy):
		return false
	default:
		return metrics.ReviewResult(err) == metrics.Failure
	}
}
