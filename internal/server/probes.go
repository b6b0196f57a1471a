package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
)

// probeMux serves liveness, readiness and metrics, and profiling when asked.
func probeMux(ready []healthz.HealthChecker, profiling bool) *http.ServeMux {
	mux := http.NewServeMux()
	healthz.InstallPathHandler(mux, "/livez", healthz.PingHealthz)
	healthz.InstallPathHandler(mux, "/readyz", ready...)
	mux.Handle("/metrics", legacyregistry.Handler())
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// upstreamReady fails while the upstream API server does not answer its own
// /readyz, so that a load balancer stops sending traffic kip cannot serve.
func upstreamReady(client rest.Interface, timeout time.Duration) healthz.HealthChecker {
	return healthz.NamedCheck("upstream", func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if _, err := client.Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
			return fmt.Errorf("the upstream API server is not ready: %w", err)
		}
		return nil
	})
}

// notShuttingDown fails once shutdown has begun, so new traffic goes
// elsewhere while in-flight requests drain.
func notShuttingDown(stopping <-chan struct{}) healthz.HealthChecker {
	return healthz.NamedCheck("shutdown", func(*http.Request) error {
		select {
		case <-stopping:
			return fmt.Errorf("kip is shutting down")
		default:
			return nil
		}
	})
}

// serveProbes runs the probe server on ln until ctx ends.
func serveProbes(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("serving probes: %w", err)
	}
	return nil
}
