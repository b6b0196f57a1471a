package gateway

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// failFastBound catches a request to a stopped cluster that hangs; it is
// not a measure of how fast kip fails (the test logs that).
const failFastBound = 10 * time.Second

// TestOneClusterDown stops gamma's kube-apiserver while alpha and beta
// carry load through kip: every request to alpha and beta succeeds,
// gamma's fail with a 502 or 503 Status, quickly, kip stays ready, and
// gamma answers again once its API server is back.
func TestOneClusterDown(t *testing.T) {
	user := harness.UniqueName("loaded")
	ns := probeEverywhere(t, userSubject(user))
	cert := userTLS(t, user)
	client := gw.httpClient(cert, "h2")
	for _, name := range clusterNames {
		harness.Eventually(t, 30*time.Second, func() error {
			if a, err := get(client, "/clusters/"+name+configMapPath(ns, "probe"), ""); err != nil || a.code != http.StatusOK {
				return errorf("%s before the fault: %v %v", name, a, err)
			}
			return nil
		})
	}

	c := gw.members[gamma].cluster
	if err := c.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Idempotent when the test restarted it already.
		if err := c.StartAPIServer(context.Background()); err != nil && err.Error() != "kube-apiserver is already running" {
			t.Errorf("restarting gamma's kube-apiserver: %v", err)
		}
	})

	load := startLoad(cert, ns, []string{alpha, beta}, 4)
	var latencies []time.Duration
	for range 20 {
		start := time.Now()
		a := mustGet(t, client, "/clusters/gamma"+configMapPath(ns, "probe"), "")
		took := time.Since(start)
		latencies = append(latencies, took)
		if (a.code != http.StatusServiceUnavailable && a.code != http.StatusBadGateway) || a.status == nil || a.status.Code != int32(a.code) {
			load.stop()
			t.Fatalf("gamma, stopped, answered %s; want a 502 or 503 Status", a)
		}
		if took > failFastBound {
			load.stop()
			t.Fatalf("gamma, stopped, took %s to answer %d", took, a.code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := readyz(); err != nil {
		t.Errorf("kip is not ready while one cluster is down: %v", err)
	}
	ok, failed := load.stop()
	wantClusterUp(t, map[string]float64{alpha: 1, beta: 1, gamma: 0})
	slices.Sort(latencies)
	t.Logf("gamma down: %d answers in %s (median) to %s (max); meanwhile alpha and beta served %d requests, %d failed",
		len(latencies), latencies[len(latencies)/2].Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond), ok, len(failed))
	for i, f := range failed {
		if i == 5 {
			t.Errorf("… and %d more", len(failed)-5)
			break
		}
		t.Errorf("while gamma was down: %s", f)
	}
	if ok == 0 {
		t.Error("no request to alpha or beta succeeded while gamma was down")
	}

	if err := c.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	harness.Eventually(t, time.Minute, func() error {
		a, err := get(client, "/clusters/gamma"+configMapPath(ns, "probe"), "")
		if err != nil || a.code != http.StatusOK {
			return errorf("gamma after its restart: %v %v", a, err)
		}
		return nil
	})
	t.Logf("gamma answered through kip %s after its kube-apiserver was ready again", time.Since(start).Round(time.Millisecond))
	wantFrom(t, mustGet(t, client, "/clusters/gamma"+configMapPath(ns, "probe"), ""), gamma)
	wantClusterUp(t, map[string]float64{alpha: 1, beta: 1, gamma: 1})
}

// wantClusterUp waits for kip's kip_cluster_up gauge to show want.
func wantClusterUp(t *testing.T, want map[string]float64) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, func() error {
		m, err := harness.ScrapeMetrics(context.Background(), http.DefaultClient, gw.kip.ProbeURL+"/metrics")
		if err != nil {
			return err
		}
		for name, up := range want {
			labels := map[string]string{"cluster": name}
			if !m.Has("kip_cluster_up", labels) {
				return errorf("kip_cluster_up{cluster=%q} is missing", name)
			}
			if got := m.Sample("kip_cluster_up", labels); got != up {
				return errorf("kip_cluster_up{cluster=%q} = %v, want %v", name, got, up)
			}
		}
		return nil
	})
}

// readyz is nil when kip's /readyz says 200.
func readyz() error {
	return getOK(context.Background(), http.DefaultClient, gw.kip.ProbeURL+"/readyz")
}

// load is GETs of the probe on some clusters from a few workers each,
// until stop.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ok     atomic.Int64
	mu     sync.Mutex
	failed []string
}

func startLoad(cert tls.Certificate, ns string, clusters []string, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	client := gw.httpClient(cert, "h2")
	for _, name := range clusters {
		for range workers {
			l.wg.Go(func() {
				for ctx.Err() == nil {
					a, err := get(client, "/clusters/"+name+configMapPath(ns, "probe"), "")
					switch {
					case err != nil:
						l.fail(name + ": " + err.Error())
					case a.code != http.StatusOK:
						l.fail(name + ": " + a.String())
					default:
						l.ok.Add(1)
					}
				}
			})
		}
	}
	return l
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = append(l.failed, msg)
}

// stop ends the load and returns how many requests succeeded and how the
// others failed. Calling it again returns the same.
func (l *load) stop() (ok int64, failed []string) {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok.Load(), l.failed
}
