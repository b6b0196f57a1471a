package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/kip-proxy/kip/internal/authn"
	"github.com/kip-proxy/kip/internal/metrics"
)

// TestGatewaySecurityIsWired builds a gateway's security and hands it to a
// real generic server: checkWired must accept the per-cluster
// authenticator, authorizer and the handshake CAs that grow with the
// clusters, and each must refuse a request that names no cluster.
func TestGatewaySecurityIsWired(t *testing.T) {
	certs := newTestCerts(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Generic: genericConfig(t, certs), TokenCacheTTL: time.Second, Clusters: ClustersConfig{Dir: t.TempDir()}}
	gw, sec, err := newClusterGateway(ctx, cfg, nil, metrics.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sec.cas.handshake.(*authn.HandshakeCAs); !ok {
		t.Fatalf("the handshake CAs are a %T, not the gateway's growing set", sec.cas.handshake)
	}
	if _, err := newGenericServer(cfg.Generic, sec, func(c *genericapiserver.Config) http.Handler {
		return buildHandlerChain(gw.ups, credentialLayers{}, c, observability{}, gw.layers())
	}); err != nil {
		t.Fatalf("the gateway's security is not accepted as wired: %v", err)
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api", nil)
	if _, ok, err := sec.authenticator.AuthenticateRequest(req); ok || err == nil {
		t.Errorf("a request without a cluster was authenticated (ok=%v, err=%v)", ok, err)
	}
	if d, _, _ := sec.authorizer.Authorize(ctx, authorizer.AttributesRecord{}); d != authorizer.DecisionDeny {
		t.Errorf("a request without a cluster was not denied: %v", d)
	}
	if sec.credentials.ownName != nil {
		t.Error("a gateway learns kip's name per cluster, not from a home upstream")
	}
}
