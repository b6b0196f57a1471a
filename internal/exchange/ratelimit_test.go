package exchange

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// TestFailureRateLimit walks one limiter through a sequence of requests:
// with a burst of 3 and a unit back every 10s.
func TestFailureRateLimit(t *testing.T) {
	const (
		a       = "192.0.2.10:40000"
		aAgain  = "192.0.2.10:50000"
		b       = "192.0.2.20:40000"
		v6      = "[2001:db8:1:2::1]:1"
		v6Same  = "[2001:db8:1:2::ffff]:1"
		v6Other = "[2001:db8:1:3::1]:1"
	)
	steps := []struct {
		name      string
		advance   time.Duration
		from      string
		token     string
		xff       string
		noCSR     bool
		malformed bool
		want      int
		// retryAfter is the Retry-After a 429 must carry.
		retryAfter int
	}{
		{name: "successes cost nothing (1)", from: a, token: goodToken, want: 201},
		{name: "successes cost nothing (2)", from: a, token: goodToken, want: 201},
		{name: "successes cost nothing (3)", from: a, token: goodToken, want: 201},
		{name: "successes cost nothing (4)", from: a, token: goodToken, want: 201},
		{name: "malformed input costs nothing (1)", from: a, malformed: true, want: 422},
		{name: "malformed input costs nothing (2)", from: a, malformed: true, want: 422},
		{name: "malformed input costs nothing (3)", from: a, malformed: true, want: 422},
		{name: "malformed input costs nothing (4)", from: a, malformed: true, want: 422},
		{name: "no review slot: try again, at no cost (1)", from: a, token: busyToken, want: 429, retryAfter: 1},
		{name: "no review slot: try again, at no cost (2)", from: a, token: busyToken, want: 429, retryAfter: 1},
		{name: "no review slot: try again, at no cost (3)", from: a, token: busyToken, want: 429, retryAfter: 1},
		{name: "no review slot: try again, at no cost (4)", from: a, token: busyToken, want: 429, retryAfter: 1},
		{name: "failure 1", from: a, token: badToken, want: 201},
		{name: "failure 2, another port", from: aAgain, token: badToken, want: 201},
		{name: "failure 3, authenticator error", from: a, token: brokenToken, want: 201},
		{name: "budget spent", from: a, token: badToken, want: 429, retryAfter: 10},
		{name: "a good token waits too", from: a, token: goodToken, want: 429, retryAfter: 10},
		{name: "malformed input waits too", from: a, malformed: true, want: 429, retryAfter: 10},
		{name: "X-Forwarded-For changes nothing", from: a, token: badToken, xff: "198.51.100.1", want: 429, retryAfter: 10},
		{name: "another address has its own budget", from: b, token: goodToken, want: 201},
		{name: "part way", advance: 4 * time.Second, from: a, token: goodToken, want: 429, retryAfter: 6},
		{name: "almost", advance: 5*time.Second + 500*time.Millisecond, from: a, token: goodToken, want: 429, retryAfter: 1},
		{name: "one unit back: a success", advance: 500 * time.Millisecond, from: a, token: goodToken, want: 201},
		{name: "that success gave its unit back", from: a, token: badToken, want: 201},
		{name: "spent again", from: a, token: goodToken, want: 429, retryAfter: 10},
		{name: "full refill", advance: time.Hour, from: a, token: badToken, want: 201},
		{name: "full refill (2)", from: a, token: badToken, want: 201},
		{name: "full refill (3)", from: a, token: badToken, want: 201},
		{name: "full refill spent", from: a, token: badToken, want: 429, retryAfter: 10},
		{name: "IPv6 failure 1", from: v6, token: badToken, want: 201},
		{name: "IPv6 failure 2", from: v6, token: badToken, want: 201},
		{name: "IPv6 failure 3, same /64", from: v6Same, token: badToken, want: 201},
		{name: "IPv6 /64 spent", from: v6Same, token: goodToken, want: 429, retryAfter: 10},
		{name: "IPv6 other /64", from: v6Other, token: goodToken, want: 201},
	}
	f := newFixture(t, func(c *Config) {
		c.FailureBurst = 3
		c.FailureInterval = 10 * time.Second
	})
	for _, s := range steps {
		f.clock.SetTime(f.clock.Now().Add(s.advance))
		body := requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: s.token})
		if s.malformed {
			body = requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: goodToken, CertificateSigningRequest: []byte("junk")})
		}
		w := f.post(body, func(r *http.Request) {
			r.RemoteAddr = s.from
			if s.xff != "" {
				r.Header.Set("X-Forwarded-For", s.xff)
			}
		})
		if w.Code != s.want {
			t.Fatalf("%s: code %d, want %d:\n%s", s.name, w.Code, s.want, w.Body)
		}
		if s.want != http.StatusTooManyRequests {
			continue
		}
		var status metav1.Status
		if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil {
			t.Fatal(err)
		}
		if got := w.Header().Get("Retry-After"); got != strconv.Itoa(s.retryAfter) {
			t.Errorf("%s: Retry-After %q, want %d", s.name, got, s.retryAfter)
		}
		if status.Reason != metav1.StatusReasonTooManyRequests || status.Details == nil || int(status.Details.RetryAfterSeconds) != s.retryAfter {
			t.Errorf("%s: status %+v, want TooManyRequests with retryAfterSeconds %d", s.name, status, s.retryAfter)
		}
	}
}

// blockingTokens refuses every token, but only when released.
type blockingTokens struct {
	mu      sync.Mutex
	entered int
	in      chan struct{}
	release chan struct{}
}

func (b *blockingTokens) AuthenticateToken(ctx context.Context, _ string) (*authenticator.Response, bool, error) {
	b.mu.Lock()
	b.entered++
	b.mu.Unlock()
	b.in <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil, false, nil
}

// TestConcurrentGuesses: guesses sent all at once cannot outrun the
// budget, because each takes its unit before its token is checked.
func TestConcurrentGuesses(t *testing.T) {
	const burst, guesses = 3, 20
	tokens := &blockingTokens{in: make(chan struct{}, guesses), release: make(chan struct{})}
	f := newFixture(t, func(c *Config) {
		c.Tokens = tokens
		c.FailureBurst = burst
	})
	body := requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: badToken})
	codes := make(chan int, guesses)
	var wg sync.WaitGroup
	for range guesses {
		wg.Go(func() { codes <- f.post(body, nil).Code })
	}
	// The guesses beyond the budget answer at once; the others wait in
	// the authenticator until released.
	counts := map[int]int{}
	for range guesses - burst {
		counts[<-codes]++
	}
	close(tokens.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		counts[code]++
	}
	if counts[http.StatusCreated] != burst || counts[http.StatusTooManyRequests] != guesses-burst || tokens.entered != burst {
		t.Errorf("answers %v with %d token checks; want %d checks answered 201 and %d answered 429", counts, tokens.entered, burst, guesses-burst)
	}
}
