package authn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/authlimit"
)

// heldReviews is the upstream's TokenReview, held for the token "slow"
// until released.
type heldReviews struct {
	*fakeTokenReviewServer
	entered, release chan struct{}
}

func (h heldReviews) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Test-Slow") != "" {
		h.entered <- struct{}{}
		<-h.release
	}
	h.fakeTokenReviewServer.ServeHTTP(w, r)
}

// TestUnknownTokensAreBounded: the TokenReviews made for bearer tokens take
// a slot of the process's outbound reviews, and a refused token is not
// sent again while it is remembered; a token that could not be checked
// for want of a slot is.
func TestUnknownTokensAreBounded(t *testing.T) {
	fake := &fakeTokenReviewServer{valid: map[string]authenticationv1.UserInfo{"good": {Username: "alice"}}}
	upstream := heldReviews{fake, make(chan struct{}, 1), make(chan struct{})}
	srv := httptest.NewServer(upstream)
	defer srv.Close()
	client, err := authenticationv1client.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// The slow review marks itself with a header only it sends.
	slowClient, err := authenticationv1client.NewForConfig(&rest.Config{Host: srv.URL, WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("X-Test-Slow", "1")
			return rt.RoundTrip(r)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	limits := authlimit.New(authlimit.Config{RefusedTokenTTL: time.Minute, MaxOutboundReviews: 1}, nil)
	fast, err := New(Config{TokenReview: client, TokenReviewTimeout: 10 * time.Second, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := New(Config{TokenReview: slowClient, TokenReviewTimeout: 10 * time.Second, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}

	for range 3 {
		if _, ok, _ := fast.AuthenticateRequest(bearer("bad")); ok {
			t.Fatal("a bad token was accepted")
		}
	}
	if _, ok, err := fast.AuthenticateRequest(bearer("good")); !ok || err != nil {
		t.Fatalf("a good token: %v, %v", ok, err)
	}
	if got := fake.tokens(); !slices.Equal(got, []string{"bad", "good"}) {
		t.Errorf("the upstream saw %q; want one review of the bad token, then the good one", got)
	}

	// A review in flight holds the only slot: another token is not sent.
	go func() { _, _, _ = slow.AuthenticateRequest(bearer("slow")) }()
	<-upstream.entered
	if _, ok, err := fast.AuthenticateRequest(bearer("waiting")); ok || !errors.Is(err, authlimit.ErrBusy) {
		t.Errorf("a token while the only slot is taken: %v, %v; want ErrBusy", ok, err)
	}
	close(upstream.release)
	// Once the slot is free the same token is sent: ErrBusy was not
	// remembered as a refusal.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(fake.tokens(), "waiting") && time.Now().Before(deadline) {
		_, _, _ = fast.AuthenticateRequest(bearer("waiting"))
	}
	if !slices.Contains(fake.tokens(), "waiting") {
		t.Errorf("the token that found no slot was never sent once slots were free: %q", fake.tokens())
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func bearer(token string) *http.Request {
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/api", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}
