package exchange

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/plugin/pkg/audit/fake"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// TestExchangesAreAudited: behind an audit step, as kip serves it, each
// exchange leaves an event whose annotations say what came of it: the
// user and the credential-id of an issued certificate (the one its later
// requests carry), or why none was issued. The token is never in it.
func TestExchangesAreAudited(t *testing.T) {
	f := newFixture(t, nil)
	var mu sync.Mutex
	var events []*auditinternal.Event
	backend := &fake.Backend{OnRequest: func(evs []*auditinternal.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, evs...)
	}}
	h := genericapifilters.WithAudit(f.handler, backend, policy.NewFakePolicyRuleEvaluator(auditinternal.LevelRequest, nil), nil)
	h = genericapifilters.WithRequestInfo(h, &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")})
	f.handler = genericapifilters.WithAuditInit(h)

	issued := f.post(requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: goodToken}), nil)
	f.post(requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: badToken}), nil)
	f.post(requestBody(t, loginv1alpha1.TokenCredentialRequestSpec{Token: busyToken}), nil)
	var answer loginv1alpha1.TokenCredentialRequest
	if err := json.Unmarshal(issued.Body.Bytes(), &answer); err != nil || answer.Status.Credential == nil {
		t.Fatalf("no certificate issued: %v %s", err, issued.Body)
	}
	block, _ := pem.Decode([]byte(answer.Status.Credential.ClientCertificateData))
	sum := sha256.Sum256(block.Bytes)

	want := []map[string]string{
		{AuditOutcomeAnnotation: "issued", AuditUserAnnotation: testUserName, AuditCredentialAnnotation: "X509SHA256=" + hex.EncodeToString(sum[:])},
		{AuditOutcomeAnnotation: "token-refused"},
		{AuditOutcomeAnnotation: "not-checked"},
	}
	wantCodes := []int32{http.StatusCreated, http.StatusCreated, http.StatusTooManyRequests}
	mu.Lock()
	defer mu.Unlock()
	// The fake backend keeps pointers, and the audit step reuses one event
	// for a request's stages: one per request is what was finally written.
	var completed []*auditinternal.Event
	seen := map[string]bool{}
	for _, ev := range events {
		if !seen[string(ev.AuditID)] {
			seen[string(ev.AuditID)] = true
			completed = append(completed, ev)
		}
	}
	if len(completed) != len(want) {
		t.Fatalf("%d audited requests, want %d", len(completed), len(want))
	}
	for i, ev := range completed {
		for k, v := range want[i] {
			if ev.Annotations[k] != v {
				t.Errorf("event %d: %s = %q, want %q", i, k, ev.Annotations[k], v)
			}
		}
		if ev.ResponseStatus == nil || ev.ResponseStatus.Code != wantCodes[i] {
			t.Errorf("event %d: response %+v, want code %d", i, ev.ResponseStatus, wantCodes[i])
		}
		if ev.ObjectRef == nil || ev.ObjectRef.Resource != "tokencredentialrequests" || ev.Verb != "create" {
			t.Errorf("event %d names %s %+v", i, ev.Verb, ev.ObjectRef)
		}
		raw, _ := json.Marshal(ev)
		for _, token := range []string{goodToken, badToken, busyToken} {
			if strings.Contains(string(raw), token) {
				t.Errorf("event %d carries a token: %s", i, raw)
			}
		}
	}
}
