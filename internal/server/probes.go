package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// probeMux serves liveness, readiness and metrics, and profiling when asked.
// lines, when set, adds lines to /readyz?verbose that inform and never
// fail: each cluster's state in a gateway.
func probeMux(ready []healthz.HealthChecker, lines func() []string, metrics http.Handler, profiling bool) *http.ServeMux {
	mux := http.NewServeMux()
	healthz.InstallPathHandler(mux, "/livez", healthz.PingHealthz)
	mux.Handle("/readyz", readyz(ready, lines))
	mux.Handle("/metrics", metrics)
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readyz answers 200 "ok" when every check passes, and 500 with a line per
// check otherwise; ?verbose lists the checks when all pass too. Unlike
// k8s.io/apiserver's healthz, a failed check says why: the probe port is
// an operator's, and "the cluster's client CA has not loaded" is what the
// operator needs to read while a replica stays out of rotation.
func readyz(checks []healthz.HealthChecker, lines func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out strings.Builder
		var failed []string
		for _, check := range checks {
			if err := check.Check(r); err != nil {
				failed = append(failed, check.Name())
				fmt.Fprintf(&out, "[-]%s failed: %v\n", check.Name(), err)
				continue
			}
			fmt.Fprintf(&out, "[+]%s ok\n", check.Name())
		}
		if lines != nil {
			for _, l := range lines() {
				fmt.Fprintln(&out, l)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if len(failed) > 0 {
			klog.V(2).InfoS("Not ready", "failedChecks", failed, "details", out.String())
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = fmt.Fprintf(w, "%sreadyz check failed\n", out.String())
			return
		}
		if _, verbose := r.URL.Query()["verbose"]; !verbose {
			_, _ = fmt.Fprint(w, "ok")
			return
		}
		_, _ = fmt.Fprintf(w, "%sreadyz check passed\n", out.String())
	})
}

// caLoaded fails while a configured CA source has not loaded: its bundle
// stays empty until then (the cluster's client CA, for one, until kip has
// read the ConfigMap), and every certificate it signed would get 401.
func caLoaded(name string, sources ...dynamiccertificates.CAContentProvider) healthz.HealthChecker {
	return healthz.NamedCheck(name, func(*http.Request) error {
		if missing := notLoaded(sources); len(missing) > 0 {
			return fmt.Errorf("not loaded yet, so the client certificates they sign would be refused: %s", strings.Join(missing, ", "))
		}
		return nil
	})
}

// notLoaded names the sources whose bundle is still empty.
func notLoaded(sources []dynamiccertificates.CAContentProvider) []string {
	var missing []string
	for _, s := range sources {
		if len(s.CurrentCABundleContent()) == 0 {
			missing = append(missing, s.Name())
		}
	}
	return missing
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
