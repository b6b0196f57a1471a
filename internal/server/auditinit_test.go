package server

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/plugin/pkg/audit/fake"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/proxy"
)

// TestAuditID: without an audit log, the caller gets back the one Audit-Id
// that names the request in kube-apiserver's audit log; with one, kip's own
// ID names it in kip's log and the events are written.
func TestAuditID(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Audit-Id", "upstream-id")
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(up.Close)
	for _, tc := range []struct {
		name       string
		audit      bool
		wantKipsID bool
	}{
		{name: "no audit policy", audit: false, wantKipsID: false},
		{name: "audit policy", audit: true, wantKipsID: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var events []*auditinternal.Event
			front := chainWith(t, up, func(c *genericapiserver.Config) {
				if tc.audit {
					c.AuditPolicyRuleEvaluator = policy.NewFakePolicyRuleEvaluator(auditinternal.LevelMetadata, nil)
					c.AuditBackend = &fake.Backend{OnRequest: func(evs []*auditinternal.Event) {
						mu.Lock()
						defer mu.Unlock()
						events = append(events, evs...)
					}}
				}
			})
			resp, err := http.Get(front.URL + "/api/v1/namespaces/default/configmaps/c")
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			ids := resp.Header.Values("Audit-Id")
			if !tc.wantKipsID {
				if len(ids) != 1 || ids[0] != "upstream-id" {
					t.Fatalf("Audit-Id %q, want only the upstream's", ids)
				}
				return
			}
			if len(ids) == 0 || ids[0] == "upstream-id" {
				t.Fatalf("Audit-Id %q, want kip's own first", ids)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(events) == 0 || string(events[0].AuditID) != ids[0] {
				t.Fatalf("audit events %v do not carry kip's Audit-Id %q", events, ids[0])
			}
		})
	}
}

// chainWith is chainFor with a say over the generic configuration.
func chainWith(t *testing.T, upstream *httptest.Server, configure func(*genericapiserver.Config)) *httptest.Server {
	t.Helper()
	c := benchConfig()
	c.RequestTimeout = time.Minute
	configure(c)
	p, err := proxy.New(&rest.Config{Host: upstream.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(buildHandlerChain(p, credentialLayers{}, c, observability{}, gatewayLayers{}))
	t.Cleanup(front.Close)
	return front
}
