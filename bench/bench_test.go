package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/bench/internal/workload"
)

// TestSmoke runs the whole benchmark with tiny sizes, so that the harness
// cannot rot between full runs. It checks that every target and workload
// made it into the report, not what the numbers are.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, kube-apiserver, kip and kubectl proxy")
	}
	dir := t.TempDir()
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"--smoke", "--out=" + dir}, &stdout, testLog{t}); err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != string(report) {
		t.Error("stdout is not the report")
	}
	for _, want := range []string{"## Goals", "## 1. Small GET", "## 2. Proxy only", "## 3. Large LIST", "## 4. Watch fan-out",
		"## 5. Port-forward", "## 6. Credential exchange", "| oidc-csr | OIDC ID token with a CSR |", "## Profiles", "### kip CPU, small GET c=32", "### kip heap in use",
		"## 7. Gateway", "### Routing", "### Registry", "## 8. Session recording", "### Throughput", "### Memory"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	run := readResults(t, filepath.Join(dir, "results.json"))
	checkLoads(t, "small GET", run.SmallGet, []string{"direct", "direct-user", "direct-impersonating", "kip", "kubectl-proxy"})
	checkLoads(t, "proxy-only", run.ProxyOnly, []string{"direct", "reverse-proxy", "kip", "kubectl-proxy"})
	checkList(t, run.List)
	checkWatch(t, run.Watch)
	checkPortForward(t, run.PortForward)
	checkExchange(t, run.Exchange)
	checkGateway(t, run.Gateway)
	checkRecording(t, run.Recording)
	for _, png := range []string{"small-get-cdf-1", "small-get-cdf-32", "small-get-throughput", "proxy-only-cdf-32", "proxy-only-throughput", "list-time", "watch-rss",
		"recording-throughput", "recording-memory"} {
		if fi, err := os.Stat(filepath.Join(dir, png+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("plot %s.png: %v", png, err)
		}
	}
}

func readResults(t *testing.T, path string) results.Run {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var run results.Run
	if err := json.Unmarshal(data, &run); err != nil {
		t.Fatal(err)
	}
	if run.Machine.Cores == 0 || run.Versions.KubeAPIServer == "" {
		t.Errorf("machine %+v, versions %+v: want both filled in", run.Machine, run.Versions)
	}
	return run
}

func checkLoads(t *testing.T, name string, loads []results.Load, targets []string) {
	t.Helper()
	for _, c := range []int{1, 32} {
		for _, target := range targets {
			l := findLoad(loads, target, c)
			switch {
			case l == nil:
				t.Errorf("%s: no result for %s at concurrency %d", name, target, c)
			case l.Requests == 0 || l.Errors != 0:
				t.Errorf("%s, %s, c=%d: %d requests, %d errors (%s)", name, target, c, l.Requests, l.Errors, l.FirstError)
			case !strings.HasPrefix(target, "direct") && l.ProxyCPUPer1k == nil:
				t.Errorf("%s, %s, c=%d: no proxy CPU", name, target, c)
			}
		}
	}
}

func findLoad(loads []results.Load, target string, c int) *results.Load {
	for i := range loads {
		if loads[i].Target == target && loads[i].Concurrency == c {
			return &loads[i]
		}
	}
	return nil
}

func checkList(t *testing.T, lists []results.List) {
	t.Helper()
	if len(lists) != 6 {
		t.Errorf("large LIST: %d results, want 3 targets × 2 encodings", len(lists))
	}
	for _, l := range lists {
		if l.Errors != 0 || len(l.Seconds) == 0 || l.Bytes == 0 {
			t.Errorf("large LIST through %s (%q): %+v", l.Target, l.Encoding, l)
		}
		if l.Target == "kip" && l.ProxyRSSGrowth == nil {
			t.Errorf("large LIST through kip: no RSS measured")
		}
	}
}

func checkWatch(t *testing.T, watches []results.Watch) {
	t.Helper()
	if len(watches) != 3 {
		t.Errorf("watch: %d results, want 3", len(watches))
	}
	for _, w := range watches {
		if w.Opened != w.Watchers || w.Delivered != w.Opened {
			t.Errorf("watch through %s: %d watchers, %d opened, %d delivered (%s)", w.Target, w.Watchers, w.Opened, w.Delivered, w.FirstError)
		}
		if w.Target == "kip" && (w.ProxyRSSPerWatch == nil || len(w.Curve) == 0) {
			t.Errorf("watch through kip: no memory measured")
		}
	}
}

func checkPortForward(t *testing.T, pfs []results.PortForward) {
	t.Helper()
	if len(pfs) != 2 {
		t.Errorf("port-forward: %d results, want direct and kip", len(pfs))
	}
	for _, p := range pfs {
		if p.Errors != 0 || p.MBps == 0 {
			t.Errorf("port-forward through %s: %d errors (%s), %.1f MB/s", p.Target, p.Errors, p.FirstError, p.MBps)
		}
	}
}

// checkExchange wants every kind of exchange at both concurrencies, each
// without errors, with latencies in a plausible order, and certificates
// issued to the user its token names.
func checkExchange(t *testing.T, exchanges []results.Exchange) {
	t.Helper()
	wantUser := map[string]string{"oidc": rig.OIDCUser, "webhook": rig.WebhookUser}
	var cpu float64
	for _, c := range workload.ExchangeConcurrencies {
		for _, kind := range []string{"oidc-csr", "webhook-csr", "oidc-generated-key"} {
			e := findExchange(exchanges, kind, c)
			switch {
			case e == nil:
				t.Errorf("credential exchange: no result for %s at concurrency %d", kind, c)
			case e.Requests == 0 || e.Errors != 0:
				t.Errorf("credential exchange %s, c=%d: %d exchanges, %d errors (%s)", kind, c, e.Requests, e.Errors, e.FirstError)
			case !(0 < e.Latency.P50 && e.Latency.P50 <= e.Latency.P99) || e.RPS <= 0:
				t.Errorf("credential exchange %s, c=%d: implausible p50 %.3f ms, p99 %.3f ms, %.0f/s", kind, c, e.Latency.P50, e.Latency.P99, e.RPS)
			case e.Connections < int64(e.Requests):
				t.Errorf("credential exchange %s, c=%d: %d exchanges over %d connections, want one each as `kip login` makes", kind, c, e.Requests, e.Connections)
			case e.User != wantUser[e.Token] || e.GeneratedKey != strings.HasSuffix(kind, "generated-key"):
				t.Errorf("credential exchange %s, c=%d: certificate for %q with generated key %t, want %q", kind, c, e.User, e.GeneratedKey, wantUser[e.Token])
			case e.ProxyCPUPer1k == nil:
				t.Errorf("credential exchange %s, c=%d: no kip CPU", kind, c)
			default:
				cpu += *e.ProxyCPUPer1k
			}
		}
	}
	// A few exchanges can fall between two clock ticks, but not all of them.
	if cpu <= 0 {
		t.Error("credential exchange: kip used no CPU at all")
	}
}

func findExchange(exchanges []results.Exchange, target string, c int) *results.Exchange {
	for i := range exchanges {
		if exchanges[i].Target == target && exchanges[i].Concurrency == c {
			return &exchanges[i]
		}
	}
	return nil
}

// checkGateway wants both kips to have served every request, and the
// registry to have been measured, changed and seen to change.
func checkGateway(t *testing.T, gw *results.Gateway) {
	t.Helper()
	if gw == nil || gw.Registry == nil {
		t.Fatalf("gateway: %+v, want routing and registry results", gw)
	}
	for _, target := range []string{"kip", "kip-gateway"} {
		l := findLoad(gw.Routing, target, 32)
		if l == nil || l.Requests == 0 || l.Errors != 0 || l.ProxyCPUPer1k == nil {
			t.Errorf("gateway routing through %s: %+v", target, l)
		}
	}
	r := gw.Registry
	if r.StartupSeconds <= 0 || r.RSS == 0 || r.BaselineRSS == 0 || r.FirstError != "" || r.AfterFirstUse == 0 {
		t.Errorf("gateway registry: %+v", r)
	}
	for _, c := range r.Changes {
		if len(c.Seconds) == 0 || c.Max <= 0 {
			t.Errorf("gateway registry change %q: %+v", c.Kind, c)
		}
	}
}

// checkRecording wants every transfer through every target without
// errors, every idle session opened, and the recorded kip to have written
// at least what the exec sessions sent to stdout.
func checkRecording(t *testing.T, rec *results.Recording) {
	t.Helper()
	if rec == nil {
		t.Fatal("recording: no results")
	}
	for _, kind := range []string{"exec", "port-forward"} {
		for _, protocol := range []string{"websocket", "spdy"} {
			for _, target := range []string{"direct", "kip", rig.RecordedName} {
				x := findTransfer(rec.Transfers, target, kind, protocol)
				switch {
				case x == nil:
					t.Errorf("recording: no %s %s through %s", kind, protocol, target)
				case x.Errors != 0 || x.MBps <= 0:
					t.Errorf("recording: %s %s through %s: %d errors (%s), %.1f MB/s", kind, protocol, target, x.Errors, x.FirstError, x.MBps)
				case target != "direct" && x.ProxyCPUPerMiB == nil:
					t.Errorf("recording: %s %s through %s: no kip CPU", kind, protocol, target)
				}
			}
		}
	}
	if rec.ExecStdoutBytes == 0 || rec.RecordedBytes < rec.ExecStdoutBytes {
		t.Errorf("recording: %d bytes recorded in %d files for %d bytes of exec stdout", rec.RecordedBytes, rec.RecordedFiles, rec.ExecStdoutBytes)
	}
	if len(rec.Memory) != 4 {
		t.Errorf("recording memory: %d results, want 2 kips × 2 protocols", len(rec.Memory))
	}
	for _, m := range rec.Memory {
		if m.Opened != m.Sessions || m.RSSBefore == 0 || m.RSSOpen == 0 || m.FirstError != "" {
			t.Errorf("recording memory through %s over %s: %+v", m.Target, m.Protocol, m)
		}
		if recorded := m.Target == rig.RecordedName; recorded && m.RecordingFiles < m.Sessions || !recorded && m.RecordingFiles != 0 {
			t.Errorf("recording memory through %s over %s: %d recordings for %d sessions", m.Target, m.Protocol, m.RecordingFiles, m.Sessions)
		}
	}
}

func findTransfer(xs []results.Transfer, target, kind, protocol string) *results.Transfer {
	for i := range xs {
		if xs[i].Target == target && xs[i].Kind == kind && xs[i].Protocol == protocol {
			return &xs[i]
		}
	}
	return nil
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
