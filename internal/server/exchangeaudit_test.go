package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/plugin/pkg/audit/fake"

	"github.com/kip-proxy/kip/internal/exchange"
)

// TestExchangeIsAudited: the exchange answers before authentication, and
// still has an event in kip's audit log, with the annotations it adds.
func TestExchangeIsAudited(t *testing.T) {
	var mu sync.Mutex
	var events []*auditinternal.Event
	c := benchConfig()
	c.AuditPolicyRuleEvaluator = policy.NewFakePolicyRuleEvaluator(auditinternal.LevelMetadata, nil)
	c.AuditBackend = &fake.Backend{OnRequest: func(evs []*auditinternal.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, evs...)
	}}
	stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		audit.AddAuditAnnotation(r.Context(), exchange.AuditOutcomeAnnotation, "issued")
		w.WriteHeader(http.StatusCreated)
	})
	served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := buildHandlerChain(served, credentialLayers{exchange: stub}, c, observability{}, gatewayLayers{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, exchange.Path, strings.NewReader("{}")))
	if w.Code != http.StatusCreated {
		t.Fatalf("code %d, want the exchange's 201", w.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 || events[0].Annotations[exchange.AuditOutcomeAnnotation] != "issued" || events[0].User.Username != "" {
		t.Fatalf("audit events %+v, want one for the exchange without a user, annotated", events)
	}
}
