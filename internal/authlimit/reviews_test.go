package authlimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/kip-proxy/kip/internal/metrics"
)

// heldTokens holds every check until released, refusing it then.
type heldTokens struct {
	in      chan struct{}
	release chan struct{}
}

func (h *heldTokens) AuthenticateToken(ctx context.Context, _ string) (*authenticator.Response, bool, error) {
	h.in <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return nil, false, nil
}

// TestReviewsBounded: with two slots, a third check waits, and is refused
// with ErrBusy when none frees in time, or goes ahead when one does.
func TestReviewsBounded(t *testing.T) {
	held := &heldTokens{in: make(chan struct{}, 10), release: make(chan struct{})}
	reviews := NewReviews(2, 200*time.Millisecond, nil)
	limited := reviews.Limit(metrics.ReviewTokenReview, held)
	done := make(chan error, 3)
	for range 2 {
		go func() {
			_, _, err := limited.AuthenticateToken(context.Background(), "x")
			done <- err
		}()
		<-held.in
	}

	// Both slots are taken: a third check marks its request busy.
	a := &attempt{budget: NewBudget(BudgetConfig{})}
	ctx := withAttempt(context.Background(), a)
	if _, _, err := limited.AuthenticateToken(ctx, "y"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third check with two in flight: %v, want ErrBusy", err)
	}
	if !a.busy.Load() {
		t.Error("the busy check did not mark its request")
	}

	// A check that waits gets the slot a finished one gives back.
	go func() {
		_, _, err := limited.AuthenticateToken(context.Background(), "z")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // a chance to start waiting; not needed for correctness
	close(held.release)
	for range 3 {
		if err := <-done; err != nil {
			t.Errorf("a check that had or got a slot: %v", err)
		}
	}
}

// TestReviewsCancelled: a caller that gives up waiting is not checked.
func TestReviewsCancelled(t *testing.T) {
	held := &heldTokens{in: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(held.release)
	limited := NewReviews(1, time.Hour, nil).Limit(metrics.ReviewWebhook, held)
	go func() { _, _, _ = limited.AuthenticateToken(context.Background(), "x") }()
	<-held.in
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := limited.AuthenticateToken(ctx, "y"); !errors.Is(err, ErrBusy) {
		t.Errorf("a cancelled wait: %v, want ErrBusy", err)
	}
}

// TestReviewsUnbounded: 0 slots bounds nothing.
func TestReviewsUnbounded(t *testing.T) {
	held := &heldTokens{in: make(chan struct{}, 100), release: make(chan struct{})}
	limited := NewReviews(0, time.Millisecond, nil).Limit(metrics.ReviewWebhook, held)
	done := make(chan struct{})
	for range 100 {
		go func() { _, _, _ = limited.AuthenticateToken(context.Background(), "x"); done <- struct{}{} }()
	}
	for range 100 {
		<-held.in
	}
	close(held.release)
	for range 100 {
		<-done
	}
}

// TestBusyIsAnswered429: a request whose token could not be checked for
// want of a slot is told to retry, not that its credentials are bad.
func TestBusyIsAnswered429(t *testing.T) {
	held := &heldTokens{in: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(held.release)
	limited := NewReviews(1, 10*time.Millisecond, nil).Limit(metrics.ReviewTokenReview, held)
	go func() { _, _, _ = limited.AuthenticateToken(context.Background(), "x") }()
	<-held.in
	h := chainWith(NewBudget(BudgetConfig{Burst: 5, Interval: time.Second}), limited)
	r := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
	r.Header.Set("Authorization", "Bearer y")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("code %d, want 429: %s", w.Code, w.Body)
	}
	wantTooMany(t, "busy", w, 1)
}
