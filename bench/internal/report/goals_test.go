package report

import (
	"strings"
	"testing"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// TestGoals pins the verdict of every goal on sampleRun, and that no goal
// is added or lost unnoticed.
func TestGoals(t *testing.T) {
	want := map[string]string{
		"small GET c=32 throughput":                          "met",
		"kip CPU per small GET, c=32":                        "met",
		"proxy-only CPU per request, c=32":                   "**missed**",
		"added latency, small GET, c=1, p50":                 "met",
		"large LIST time (Accept-Encoding none)":             "**missed**",
		"large LIST proxy RSS growth (Accept-Encoding none)": "met",
		"watch memory":            "**missed**",
		"watch delivery p99":      "met at 2000 (goal is at 10,000)",
		"port-forward throughput": "met",
		"credential exchange p50": "met",
		"kip CPU per exchange":    "reported",
	}
	got := map[string]string{}
	for _, g := range goals(sampleRun()) {
		got[g.name] = g.verdict()
	}
	for name, verdict := range want {
		if got[name] != verdict {
			t.Errorf("%s: verdict %q, want %q", name, got[name], verdict)
		}
	}
	if len(got) != len(want) {
		t.Errorf("goals %v, want exactly %v", got, want)
	}
}

func TestGoalsWithoutData(t *testing.T) {
	for _, g := range goals(&results.Run{}) {
		if g.met != nil {
			t.Errorf("%s: verdict %q from no data", g.name, g.verdict())
		}
	}
}

// TestGoalVerdicts tweaks sampleRun so that each goal is met in one case
// and missed (or unmeasured) in another, and checks what the row says.
func TestGoalVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		goal    string
		tweak   func(*results.Run)
		verdict string
		got     string // a substring of the row's figure
	}{
		{name: "ahead of kubectl proxy", goal: "small GET c=32 throughput", tweak: func(*results.Run) {},
			verdict: "met", got: "0.75× direct, 0.86× direct-impersonating; kubectl proxy 0.70× direct"},
		{name: "behind kubectl proxy", goal: "small GET c=32 throughput",
			tweak:   func(r *results.Run) { smallGet(r, "kubectl-proxy", 32).RPS = 3200 },
			verdict: "**missed**", got: "kubectl proxy 0.80× direct"},
		{name: "kip served nothing", goal: "small GET c=32 throughput",
			tweak:   func(r *results.Run) { smallGet(r, "kip", 32).RPS = 0 },
			verdict: "**missed**", got: "0.00× direct"},
		{name: "no kubectl proxy", goal: "small GET c=32 throughput",
			tweak:   func(r *results.Run) { r.SmallGet = drop(r.SmallGet, "kubectl-proxy", 32) },
			verdict: "n/a"},

		{name: "CPU as kubectl proxy's", goal: "kip CPU per small GET, c=32", tweak: func(*results.Run) {},
			verdict: "met", got: "1.00× kubectl proxy's (0.500 vs 0.500 s per 1,000)"},
		{name: "CPU above kubectl proxy's", goal: "kip CPU per small GET, c=32",
			tweak:   func(r *results.Run) { smallGet(r, "kip", 32).ProxyCPUPer1k = ptr(0.6) },
			verdict: "**missed**", got: "1.20× kubectl proxy's (0.600 vs 0.500"},
		{name: "kubectl proxy CPU unmeasured", goal: "kip CPU per small GET, c=32",
			tweak:   func(r *results.Run) { smallGet(r, "kubectl-proxy", 32).ProxyCPUPer1k = nil },
			verdict: "n/a"},

		{name: "proxy-only CPU as the reverse proxy's", goal: "proxy-only CPU per request, c=32", tweak: func(*results.Run) {},
			verdict: "**missed**", got: "1.00× the reverse proxy's (0.500 vs 0.500 s per 1,000); kubectl proxy 1.00×"},
		{name: "proxy-only CPU well under", goal: "proxy-only CPU per request, c=32",
			tweak: func(r *results.Run) {
				findLoad(r.ProxyOnly, "kip", 32).ProxyCPUPer1k = ptr(0.35)
				findLoad(r.ProxyOnly, "kubectl-proxy", 32).ProxyCPUPer1k = ptr(0.9)
			},
			verdict: "met", got: "0.70× the reverse proxy's (0.350 vs 0.500 s per 1,000); kubectl proxy 1.80×"},

		{name: "latency over direct-impersonating", goal: "added latency, small GET, c=1, p50", tweak: func(*results.Run) {},
			verdict: "met", got: "0.050 ms (1.100 vs 1.050); 0.100 ms over direct"},
		{name: "latency too far over direct-impersonating", goal: "added latency, small GET, c=1, p50",
			tweak:   func(r *results.Run) { smallGet(r, "direct-impersonating", 1).Latency.P50 = 0.9 },
			verdict: "**missed**", got: "0.200 ms (1.100 vs 0.900)"},
		{name: "latency over direct, no direct-impersonating", goal: "added latency, small GET, c=1, p50",
			tweak:   func(r *results.Run) { r.SmallGet = drop(r.SmallGet, "direct-impersonating", 1) },
			verdict: "met", got: "0.100 ms over direct (1.100 vs 1.000); no direct-impersonating result"},
		{name: "latency too far over direct, no direct-impersonating", goal: "added latency, small GET, c=1, p50",
			tweak: func(r *results.Run) {
				r.SmallGet = drop(r.SmallGet, "direct-impersonating", 1)
				smallGet(r, "direct", 1).Latency.P50 = 0.9
			},
			verdict: "**missed**", got: "0.200 ms over direct"},

		{name: "watch memory over", goal: "watch memory", tweak: func(*results.Run) {},
			verdict: "**missed**", got: "40.0 KiB at 2000 watches"},
		{name: "watch memory under, too few watchers", goal: "watch memory",
			tweak:   func(r *results.Run) { findWatch(r.Watch, "kip").ProxyRSSPerWatch = ptr(20.0 * 1024) },
			verdict: "met at 2000 (goal is at 10,000)", got: "20.0 KiB"},
		{name: "watch memory under at 10,000", goal: "watch memory",
			tweak: func(r *results.Run) {
				atWatchers(r, 10000)
				findWatch(r.Watch, "kip").ProxyRSSPerWatch = ptr(24.0 * 1024)
			},
			verdict: "met", got: "24.0 KiB at 10000 watches"},

		{name: "delivery at 10,000 as fast as direct", goal: "watch delivery p99",
			tweak:   func(r *results.Run) { atWatchers(r, 10000) },
			verdict: "met", got: "300 ms vs direct 400 ms at 10000 watchers (10000 of 10000 delivered)"},
		{name: "delivery slower than direct", goal: "watch delivery p99",
			tweak:   func(r *results.Run) { findWatch(r.Watch, "direct").Delivery.P99 = 250 },
			verdict: "**missed**", got: "300 ms vs direct 250 ms at 2000 watchers"},
		{name: "a watch missed the event", goal: "watch delivery p99",
			tweak:   func(r *results.Run) { findWatch(r.Watch, "kip").Delivered = 1999 },
			verdict: "**missed**", got: "(1999 of 2000 delivered)"},
		{name: "no direct watches", goal: "watch delivery p99",
			tweak:   func(r *results.Run) { r.Watch = r.Watch[:1] },
			verdict: "n/a", got: "300 ms at 2000 watchers (2000 of 2000 delivered); no direct watch result"},

		{name: "port-forward at 0.9×", goal: "port-forward throughput", tweak: func(*results.Run) {},
			verdict: "met", got: "0.90× (90 vs 100 MB/s)"},
		{name: "port-forward under 0.9×", goal: "port-forward throughput",
			tweak:   func(r *results.Run) { r.PortForward[1].MBps = 85 },
			verdict: "**missed**", got: "0.85×"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := sampleRun()
			tc.tweak(run)
			g, ok := goalNamed(run, tc.goal)
			if !ok {
				t.Fatalf("no goal %q", tc.goal)
			}
			if g.verdict() != tc.verdict || !strings.Contains(g.got, tc.got) {
				t.Errorf("verdict %q, got %q; want %q and a figure containing %q", g.verdict(), g.got, tc.verdict, tc.got)
			}
		})
	}
}

func goalNamed(run *results.Run, name string) (goal, bool) {
	for _, g := range goals(run) {
		if g.name == name {
			return g, true
		}
	}
	return goal{}, false
}

// smallGet is the sample's small GET load, which a case must not ask for
// unless sampleRun has it.
func smallGet(run *results.Run, target string, c int) *results.Load {
	return findLoad(run.SmallGet, target, c)
}

func drop(loads []results.Load, target string, c int) []results.Load {
	var out []results.Load
	for _, l := range loads {
		if l.Target != target || l.Concurrency != c {
			out = append(out, l)
		}
	}
	return out
}

// atWatchers makes every watch result one at n watchers, all delivered.
func atWatchers(run *results.Run, n int) {
	for i := range run.Watch {
		w := &run.Watch[i]
		w.Watchers, w.Opened, w.Delivered = n, n, n
	}
}
