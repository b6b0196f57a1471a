package proxy

import (
	"context"
	"fmt"
	"net/http"

	"k8s.io/client-go/rest"
	"k8s.io/streaming/pkg/httpstream"
)

// transports holds one HTTP/2-capable and one HTTP/1.1-only transport for
// each way kip authenticates upstream. Ordinary requests share a few
// multiplexed HTTP/2 connections; upgrades need HTTP/1.1, which is the only
// version where a connection can switch protocols.
type transports struct {
	kip, kipUpgrade       http.RoundTripper // kip's own credentials
	bearer, bearerUpgrade http.RoundTripper // no credentials: the caller's token is added per request
}

func newTransports(upstream *rest.Config) (*transports, error) {
	own := rest.CopyConfig(upstream)
	// An operator's kubeconfig must not smuggle its own impersonation in.
	own.Impersonate = rest.ImpersonationConfig{}
	anonymous := rest.AnonymousClientConfig(own)

	var t transports
	var err error
	for _, spec := range []struct {
		cfg     *rest.Config
		upgrade bool
		into    *http.RoundTripper
	}{
		{own, false, &t.kip}, {own, true, &t.kipUpgrade},
		{anonymous, false, &t.bearer}, {anonymous, true, &t.bearerUpgrade},
	} {
		if *spec.into, err = transportFor(spec.cfg, spec.upgrade); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

// transportFor lets client-go build the transport, so that every credential
// form a kubeconfig can hold (certificates, token files, exec plugins) works.
// Restricting ALPN to http/1.1 makes client-go leave HTTP/2 off.
func transportFor(cfg *rest.Config, upgrade bool) (http.RoundTripper, error) {
	cfg = rest.CopyConfig(cfg)
	// The caller's own Accept-Encoding goes upstream unchanged. Otherwise
	// Go's transport would ask for gzip on the caller's behalf and unpack
	// it again in kip: two compressions' worth of CPU for a caller that
	// wanted none.
	cfg.DisableCompression = true
	if upgrade {
		cfg.NextProtos = []string{"http/1.1"}
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the upstream transport: %w", err)
	}
	return rt, nil
}

// RoundTrip picks the transport for one outbound request.
func (t *transports) RoundTrip(req *http.Request) (*http.Response, error) {
	upgrade := httpstream.IsUpgradeRequest(req)
	switch {
	case usesCallerToken(req.Context()) && upgrade:
		return t.bearerUpgrade.RoundTrip(req)
	case usesCallerToken(req.Context()):
		return t.bearer.RoundTrip(req)
	case upgrade:
		return t.kipUpgrade.RoundTrip(req)
	default:
		return t.kip.RoundTrip(req)
	}
}

type callerTokenKey struct{}

func withCallerToken(ctx context.Context) context.Context {
	return context.WithValue(ctx, callerTokenKey{}, true)
}

func usesCallerToken(ctx context.Context) bool {
	v, _ := ctx.Value(callerTokenKey{}).(bool)
	return v
}
