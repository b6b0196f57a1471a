package authlimit

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	clocktesting "k8s.io/utils/clock/testing"
)

// answers gives each token a fixed answer and counts the checks of each.
type answers struct {
	errs   map[string]error
	good   map[string]bool
	checks map[string]int
}

func (a *answers) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	a.checks[token]++
	if a.good[token] {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice"}}, true, nil
	}
	return nil, false, a.errs[token]
}

// TestRefusedTokens: refusals are answered from memory until the TTL
// passes; a verifier that could not decide is asked every time.
func TestRefusedTokens(t *testing.T) {
	unreachable := &url.Error{Op: "Post", URL: "https://webhook", Err: errors.New("connection refused")}
	tokens := &answers{
		errs: map[string]error{
			"refused-with-message": errors.New("token expired"),
			"unreachable":          unreachable,
			"busy":                 ErrBusy,
		},
		good:   map[string]bool{"good": true},
		checks: map[string]int{},
	}
	clock := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	cached := RefusedTokens(tokens, 5*time.Second, clock, nil)
	ctx := context.Background()
	steps := []struct {
		name    string
		advance time.Duration
		token   string
		// wantChecks is the checks of token so far.
		wantChecks int
		wantOK     bool
		wantErr    error
	}{
		{name: "refused", token: "bad", wantChecks: 1},
		{name: "refused from memory", token: "bad", wantChecks: 1},
		{name: "a refusal with a message", token: "refused-with-message", wantChecks: 1, wantErr: tokens.errs["refused-with-message"]},
		{name: "from memory, with its message", token: "refused-with-message", wantChecks: 1, wantErr: tokens.errs["refused-with-message"]},
		{name: "an unreachable verifier", token: "unreachable", wantChecks: 1, wantErr: unreachable},
		{name: "is asked again", token: "unreachable", wantChecks: 2, wantErr: unreachable},
		{name: "no review slot", token: "busy", wantChecks: 1, wantErr: ErrBusy},
		{name: "is tried again", token: "busy", wantChecks: 2, wantErr: ErrBusy},
		{name: "good", token: "good", wantChecks: 1, wantOK: true},
		{name: "good is never remembered here", token: "good", wantChecks: 2, wantOK: true},
		{name: "still within the TTL", advance: 4 * time.Second, token: "bad", wantChecks: 1},
		{name: "past the TTL", advance: 2 * time.Second, token: "bad", wantChecks: 2},
	}
	for _, s := range steps {
		clock.Step(s.advance)
		_, ok, err := cached.AuthenticateToken(ctx, s.token)
		if ok != s.wantOK || !errors.Is(err, s.wantErr) && err != s.wantErr {
			t.Errorf("%s: ok %v, err %v; want %v, %v", s.name, ok, err, s.wantOK, s.wantErr)
		}
		if got := tokens.checks[s.token]; got != s.wantChecks {
			t.Errorf("%s: %d checks of %q, want %d", s.name, got, s.token, s.wantChecks)
		}
	}
}

// TestRefusedTokensCancelled: a check cut short by its caller is not a
// refusal.
func TestRefusedTokensCancelled(t *testing.T) {
	tokens := &answers{errs: map[string]error{"t": context.Canceled}, checks: map[string]int{}}
	cached := RefusedTokens(tokens, time.Minute, clocktesting.NewFakeClock(time.Now()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 2 {
		_, _, _ = cached.AuthenticateToken(ctx, "t")
	}
	if tokens.checks["t"] != 2 {
		t.Errorf("%d checks, want 2", tokens.checks["t"])
	}
}

// TestRefusedTokensBounded: the memory holds at most maxRefused tokens.
func TestRefusedTokensBounded(t *testing.T) {
	tokens := &answers{checks: map[string]int{}}
	clock := clocktesting.NewFakeClock(time.Now())
	cached := RefusedTokens(tokens, time.Minute, clock, nil)
	for i := range maxRefused + 1 {
		_, _, _ = cached.AuthenticateToken(context.Background(), "t"+strconv.Itoa(i))
	}
	// The first token was the least recently used: it was forgotten.
	_, _, _ = cached.AuthenticateToken(context.Background(), "t0")
	if n := tokens.checks["t0"]; n != 2 {
		t.Errorf("the oldest of %d refused tokens was checked %d times, want 2 (forgotten)", maxRefused+1, n)
	}
}
