package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/plugin/pkg/audit/fake"
)

// TestFailedAuthenticationBudgetWraps checks where the budget sits in the
// chain: taken just outside authentication, so a spent address is refused
// before any credential is checked, and given back just inside it, before
// impersonation and the proxy. Without a budget neither layer is there.
func TestFailedAuthenticationBudgetWraps(t *testing.T) {
	c := benchConfig()
	names := func(b *authlimit.Budget) []string {
		var n []string
		for _, l := range handlerLayers(credentialLayers{budget: b}, c, observability{}, gatewayLayers{}) {
			n = append(n, l.name) // innermost first
		}
		return n
	}
	with := names(authlimit.NewBudget(authlimit.BudgetConfig{Burst: 1}))
	returned, authn, taken := slices.Index(with, "failed authentication budget returned"), slices.Index(with, "authentication"), slices.Index(with, "failed authentication budget")
	if returned < 0 || authn != returned+1 || taken != authn+1 {
		t.Errorf("layers %q: want the budget returned, authentication and the budget taken next to each other, innermost first", with)
	}
	without := names(nil)
	if slices.Contains(without, "failed authentication budget") || slices.Contains(without, "failed authentication budget returned") {
		t.Errorf("layers without a budget %q have budget layers", without)
	}
}

// refusingTokens refuses every token; with held, each check first says so
// on entered, then waits until held is closed.
type refusingTokens struct{ entered, held chan struct{} }

func (r refusingTokens) AuthenticateToken(ctx context.Context, _ string) (*authenticator.Response, bool, error) {
	if r.held != nil {
		r.entered <- struct{}{}
		select {
		case <-r.held:
		case <-ctx.Done():
		}
	}
	return nil, false, nil
}

// TestThrottledRequestsAreAudited: a request answered 429 around
// authentication (the address's budget spent, or no review slot free) is
// in kip's audit log with its code, as a 401 is, so that a flood shows
// there and not only in the metrics. A gateway's cluster list, which has
// an authenticator of its own, spends the same budget.
func TestThrottledRequestsAreAudited(t *testing.T) {
	entered, held := make(chan struct{}), make(chan struct{})
	defer close(held)
	busyReviews := authlimit.NewReviews(1, 10*time.Millisecond, nil)
	go func() {
		// Take the one slot and keep it.
		_, _, _ = busyReviews.Limit(metrics.ReviewWebhook, refusingTokens{entered: entered, held: held}).AuthenticateToken(context.Background(), "first")
	}()
	<-entered
	for _, tc := range []struct {
		name   string
		budget *authlimit.Budget
		tokens authenticator.Token
		list   bool
		want   []int32
	}{
		{name: "budget spent at the cluster list", budget: authlimit.NewBudget(authlimit.BudgetConfig{Burst: 1, Interval: time.Hour}), tokens: refusingTokens{}, list: true,
			want: []int32{http.StatusUnauthorized, http.StatusTooManyRequests}},
		{name: "budget spent", budget: authlimit.NewBudget(authlimit.BudgetConfig{Burst: 1, Interval: time.Hour}), tokens: refusingTokens{},
			want: []int32{http.StatusUnauthorized, http.StatusTooManyRequests}},
		{name: "no review slot", budget: authlimit.NewBudget(authlimit.BudgetConfig{Burst: 5, Interval: time.Hour}),
			tokens: busyReviews.Limit(metrics.ReviewWebhook, refusingTokens{}), want: []int32{http.StatusTooManyRequests, http.StatusTooManyRequests}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var codes []int32
			c := benchConfig()
			c.Authentication.Authenticator = bearertoken.New(tc.tokens)
			c.AuditPolicyRuleEvaluator = policy.NewFakePolicyRuleEvaluator(auditinternal.LevelMetadata, nil)
			c.AuditBackend = &fake.Backend{OnRequest: func(evs []*auditinternal.Event) {
				mu.Lock()
				defer mu.Unlock()
				for _, ev := range evs {
					if ev.ResponseStatus != nil {
						codes = append(codes, ev.ResponseStatus.Code)
					}
				}
			}}
			served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
			gw, path := gatewayLayers{}, "/api/v1/namespaces/default/configmaps"
			if tc.list {
				// The chain's own authenticator would accept anyone.
				gw.list = clusterList{handler: gateway.NewClusterList(func(user.Info) []string { return nil }), auth: bearertoken.New(tc.tokens)}
				path = gateway.ListPath
				c.Authentication.Authenticator = benchConfig().Authentication.Authenticator
			}
			h := buildHandlerChain(served, credentialLayers{budget: tc.budget}, c, observability{}, gw)
			var got []int
			for i := range tc.want {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Header.Set("Authorization", fmt.Sprintf("Bearer not-a-token-%d", i))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				got = append(got, w.Code)
			}
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || !slices.Equal(codes, tc.want) {
				t.Errorf("answered %v and audited %v, want %v both", got, codes, tc.want)
			}
		})
	}
}
