package authlimit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	clocktesting "k8s.io/utils/clock/testing"
)

// countingTokens accepts the tokens in good and refuses the rest,
// counting every check: each would be an outbound review.
type countingTokens struct {
	good   map[string]bool
	checks atomic.Int64
}

func (c *countingTokens) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	c.checks.Add(1)
	if c.good[token] {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice"}}, true, nil
	}
	return nil, false, nil
}

func testSerializer() runtime.NegotiatedSerializer {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(scheme)
}

// chainWith is the part of kip's chain around authentication, as
// internal/server assembles it.
func chainWith(b *Budget, tokens authenticator.Token) http.Handler {
	s := testSerializer()
	served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	failed := WithFailureAnswer(genericapifilters.Unauthorized(s), b, s)
	h := WithSuccessNoted(served)
	h = genericapifilters.WithAuthentication(h, bearertoken.New(tokens), failed, nil, nil)
	h = WithFailureBudget(h, b, s, func(h http.Handler) http.Handler { return h })
	return genericapifilters.WithRequestInfo(h, &apirequest.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")})
}

// TestFailureBudget walks one budget through a sequence of requests: a
// burst of 3 and a unit back every 10s.
func TestFailureBudget(t *testing.T) {
	const (
		a      = "192.0.2.10:40000"
		aAgain = "192.0.2.10:50000"
		b      = "192.0.2.20:40000"
		v6     = "[2001:db8:1:2::1]:1"
		v6Same = "[2001:db8:1:2::ffff]:1"
	)
	steps := []struct {
		name    string
		advance time.Duration
		from    string
		token   string // "" sends none
		xff     string
		cert    bool
		want    int
		// checked says whether the token reached the authenticator.
		checked    bool
		retryAfter int
	}{
		{name: "no credentials cost nothing (1)", from: a, want: 401},
		{name: "no credentials cost nothing (2)", from: a, want: 401},
		{name: "no credentials cost nothing (3)", from: a, want: 401},
		{name: "no credentials cost nothing (4)", from: a, want: 401},
		{name: "a success costs nothing", from: a, token: "good-1", want: 200, checked: true},
		{name: "failure 1", from: a, token: "bad-1", want: 401, checked: true},
		{name: "failure 2, another port", from: aAgain, token: "bad-2", want: 401, checked: true},
		{name: "failure 3", from: a, token: "bad-3", want: 401, checked: true},
		{name: "spent: nothing is checked", from: a, token: "bad-4", want: 429, retryAfter: 10},
		{name: "X-Forwarded-For changes nothing", from: a, token: "bad-5", xff: "198.51.100.1", want: 429, retryAfter: 10},
		{name: "a token never seen waits too", from: a, token: "good-2", want: 429, retryAfter: 10},
		{name: "a token that authenticated recently is not held back", from: a, token: "good-1", want: 200, checked: true},
		{name: "again", from: aAgain, token: "good-1", want: 200, checked: true},
		{name: "no credentials are refused as before", from: a, want: 401},
		{name: "another address has its own budget", from: b, token: "bad-6", want: 401, checked: true},
		{name: "part way", advance: 4 * time.Second, from: a, token: "bad-7", want: 429, retryAfter: 6},
		{name: "one unit back: a new good token", advance: 6 * time.Second, from: a, token: "good-2", want: 200, checked: true},
		{name: "that success gave its unit back", from: a, token: "bad-8", want: 401, checked: true},
		{name: "spent again", from: a, token: "bad-9", want: 429, retryAfter: 10},
		{name: "a good token revoked", from: b, token: "good-revoked", want: 200, checked: true},
		{name: "refused once revoked (skipping the budget one last time)", from: b, token: "revoke:good-revoked", want: 401, checked: true},
		{name: "and then it spends like any other", from: b, token: "good-revoked", want: 401, checked: true},
		{name: "a token with a client certificate is not remembered", from: b, token: "good-3", cert: true, want: 200, checked: true},
		{name: "b's unit earned back since bad-6", from: b, token: "bad-10", want: 401, checked: true},
		{name: "b's last unit", from: b, token: "bad-11", want: 401, checked: true},
		{name: "b spent", from: b, token: "bad-12", want: 429, retryAfter: 10},
		{name: "so good-3 waits", from: b, token: "good-3", want: 429, retryAfter: 10},
		{name: "IPv6 1", from: v6, token: "bad-15", want: 401, checked: true},
		{name: "IPv6 2", from: v6Same, token: "bad-12", want: 401, checked: true},
		{name: "IPv6 3", from: v6, token: "bad-13", want: 401, checked: true},
		{name: "IPv6 /64 spent", from: v6Same, token: "bad-14", want: 429, retryAfter: 10},
	}
	clock := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	tokens := &countingTokens{good: map[string]bool{"good-1": true, "good-2": true, "good-3": true, "good-revoked": true}}
	h := chainWith(NewBudget(BudgetConfig{Burst: 3, Interval: 10 * time.Second, Clock: clock}), tokens)
	for _, s := range steps {
		clock.Step(s.advance)
		token := s.token
		if name, ok := strings.CutPrefix(token, "revoke:"); ok {
			delete(tokens.good, name)
			token = name
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
		r.RemoteAddr = s.from
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if s.xff != "" {
			r.Header.Set("X-Forwarded-For", s.xff)
		}
		if s.cert {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
		}
		before := tokens.checks.Load()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != s.want {
			t.Fatalf("%s: code %d, want %d:\n%s", s.name, w.Code, s.want, w.Body)
		}
		if checked := tokens.checks.Load() > before; checked != s.checked {
			t.Errorf("%s: token checked %v, want %v", s.name, checked, s.checked)
		}
		if s.want == http.StatusTooManyRequests {
			wantTooMany(t, s.name, w, s.retryAfter)
		}
	}
}

// wantTooMany checks a 429 is a metav1.Status with a matching Retry-After.
func wantTooMany(t *testing.T, name string, w *httptest.ResponseRecorder, retryAfter int) {
	t.Helper()
	var status metav1.Status
	if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil {
		t.Fatalf("%s: not a Status: %v: %s", name, err, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Errorf("%s: Retry-After %q, want %d", name, got, retryAfter)
	}
	if status.Reason != metav1.StatusReasonTooManyRequests || status.Details == nil || int(status.Details.RetryAfterSeconds) != retryAfter {
		t.Errorf("%s: status %+v, want TooManyRequests with retryAfterSeconds %d", name, status, retryAfter)
	}
}

// TestBudgetOff: a burst of 0 checks every token.
func TestBudgetOff(t *testing.T) {
	tokens := &countingTokens{}
	h := chainWith(NewBudget(BudgetConfig{}), tokens)
	for range 50 {
		r := httptest.NewRequest(http.MethodGet, "/api", nil)
		r.Header.Set("Authorization", "Bearer bad")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("code %d, want 401", w.Code)
		}
	}
	if n := tokens.checks.Load(); n != 50 {
		t.Errorf("%d checks, want 50", n)
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		name      string
		header    http.Header
		want      string
		wantFound bool
	}{
		{name: "bearer", header: http.Header{"Authorization": {"Bearer abc"}}, want: "abc", wantFound: true},
		{name: "any case, spaces", header: http.Header{"Authorization": {"  bEaReR   abc  "}}, want: "abc", wantFound: true},
		{name: "basic", header: http.Header{"Authorization": {"Basic abc"}}},
		{name: "empty bearer", header: http.Header{"Authorization": {"Bearer "}}},
		{name: "none", header: http.Header{}},
		{name: "websocket", header: http.Header{"Sec-Websocket-Protocol": {"v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.YWJj"}}, want: "base64url.bearer.authorization.k8s.io.YWJj", wantFound: true},
		{name: "websocket without a token", header: http.Header{"Sec-Websocket-Protocol": {"v4.channel.k8s.io"}}},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header = tc.header
		got, found := bearerToken(r)
		if got != tc.want || found != tc.wantFound {
			t.Errorf("%s: bearerToken = %q, %v; want %q, %v", tc.name, got, found, tc.want, tc.wantFound)
		}
	}
}
