package report

import (
	"fmt"
	"strings"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// goal is one line of the Goals table.
type goal struct {
	name, want, got string
	// met is nil when the goal could not be measured in this run.
	met *bool
	// note replaces the verdict when it needs qualifying.
	note string
}

func (g goal) verdict() string {
	met := g.met
	switch {
	case g.note != "":
		return g.note
	case met == nil:
		return "n/a"
	case *met:
		return "met"
	default:
		return "**missed**"
	}
}

func is(b bool) *bool { return &b }

// goals compares kip with its goals. Where a goal has a baseline, the
// comparison is a ratio or difference taken within one run: that carries
// over between machines, where absolute figures do not.
func goals(run *results.Run) []goal {
	gs := []goal{smallGetThroughput(run), smallGetCPU(run), proxyOnlyCPU(run), addedLatency(run)}
	for _, enc := range encodings(run.List) {
		gs = append(gs, listTime(run, enc), listMemory(run, enc))
	}
	gs = append(gs, watchMemory(run), watchLatency(run),
		portForward(run), exchangeLatency(run), exchangeCPU(run),
	)
	gs = append(gs, gatewayGoals(run)...)
	return append(gs, recordingGoals(run)...)
}

func skippedOr(run *results.Run, workload string) string {
	if reason, ok := run.Skipped[workload]; ok {
		first, _, _ := strings.Cut(reason, ":")
		return first
	}
	return "not measured"
}

// served is the load against target at concurrency c, or nil when that
// target served nothing: an empty result is no baseline to compare with.
func served(loads []results.Load, target string, c int) *results.Load {
	if l := findLoad(loads, target, c); l != nil && l.Requests > 0 && l.RPS > 0 {
		return l
	}
	return nil
}

// cpuPer1k is the proxy CPU per 1,000 requests for target at concurrency
// c, or nil when it was not measured or is zero (no ratio can use it).
func cpuPer1k(loads []results.Load, target string, c int) *float64 {
	if l := findLoad(loads, target, c); l != nil && l.ProxyCPUPer1k != nil && *l.ProxyCPUPer1k > 0 {
		return l.ProxyCPUPer1k
	}
	return nil
}

// smallGetThroughput asks kip to beat the proxy users would otherwise run;
// direct-impersonating is the ceiling for any impersonating proxy, so 0.9×
// of it is the moonshot.
func smallGetThroughput(run *results.Run) goal {
	g := goal{name: "small GET c=32 throughput", want: "ahead of kubectl proxy (moonshot 0.9× direct-impersonating)"}
	// kip may have served nothing: that is a miss, not a missing baseline.
	kip, kp, direct := findLoad(run.SmallGet, "kip", 32), served(run.SmallGet, "kubectl-proxy", 32), served(run.SmallGet, "direct", 32)
	if kip == nil || kp == nil || direct == nil {
		return g
	}
	g.got = fmt.Sprintf("%.2f× direct", kip.RPS/direct.RPS)
	if imp := served(run.SmallGet, "direct-impersonating", 32); imp != nil {
		g.got += fmt.Sprintf(", %.2f× direct-impersonating", kip.RPS/imp.RPS)
	}
	g.got += fmt.Sprintf("; kubectl proxy %.2f× direct", kp.RPS/direct.RPS)
	g.met = is(kip.RPS > kp.RPS)
	return g
}

// smallGetCPU weighs kip's CPU against kubectl proxy's: on a shared node
// a proxy's CPU is taken from the workloads, whatever its throughput.
func smallGetCPU(run *results.Run) goal {
	g := goal{name: "kip CPU per small GET, c=32", want: "≤ kubectl proxy's"}
	if r, ok := cpuGoal(run.SmallGet, "kubectl-proxy", "kubectl proxy's", &g); ok {
		g.met = is(r <= 1)
	}
	return g
}

// proxyOnlyCPU isolates kip's own hop from kube-apiserver: against a
// trivial upstream, its work per request should undercut a bare
// httputil.ReverseProxy doing only TLS and HTTP/2 on both sides.
func proxyOnlyCPU(run *results.Run) goal {
	g := goal{name: "proxy-only CPU per request, c=32", want: "≤ 0.8× the bare reverse proxy's"}
	r, ok := cpuGoal(run.ProxyOnly, "reverse-proxy", "the reverse proxy's", &g)
	if !ok {
		return g
	}
	if kp, rp := cpuPer1k(run.ProxyOnly, "kubectl-proxy", 32), cpuPer1k(run.ProxyOnly, "reverse-proxy", 32); kp != nil {
		g.got += fmt.Sprintf("; kubectl proxy %.2f×", *kp / *rp)
	}
	g.met = is(r <= 0.8)
	return g
}

// cpuGoal writes kip's CPU per request at c=32 against the target's into
// g.got and returns the ratio; false when either was not measured.
func cpuGoal(loads []results.Load, target, whose string, g *goal) (float64, bool) {
	kip, other := cpuPer1k(loads, "kip", 32), cpuPer1k(loads, target, 32)
	if kip == nil || other == nil {
		return 0, false
	}
	r := *kip / *other
	g.got = fmt.Sprintf("%.2f× %s (%.3f vs %.3f s per 1,000)", r, whose, *kip, *other)
	return r, true
}

// addedLatency is measured over direct-impersonating, which pays
// kube-apiserver's own impersonation cost, so what remains is kip's hop.
// Runs without that target fall back to direct, which is stricter.
func addedLatency(run *results.Run) goal {
	g := goal{name: "added latency, small GET, c=1, p50", want: "≤ 0.150 ms over direct-impersonating"}
	kip, direct := served(run.SmallGet, "kip", 1), served(run.SmallGet, "direct", 1)
	if kip == nil || direct == nil {
		return g
	}
	overDirect := kip.Latency.P50 - direct.Latency.P50
	imp := served(run.SmallGet, "direct-impersonating", 1)
	if imp == nil {
		g.got = fmt.Sprintf("%.3f ms over direct (%.3f vs %.3f); no direct-impersonating result", overDirect, kip.Latency.P50, direct.Latency.P50)
		g.met = is(overDirect <= 0.150)
		return g
	}
	added := kip.Latency.P50 - imp.Latency.P50
	g.got = fmt.Sprintf("%.3f ms (%.3f vs %.3f); %.3f ms over direct", added, kip.Latency.P50, imp.Latency.P50, overDirect)
	g.met = is(added <= 0.150)
	return g
}

func listTime(run *results.Run, enc string) goal {
	g := goal{name: fmt.Sprintf("large LIST time (Accept-Encoding %s)", encodingName(enc)), want: "≤ 1.05× direct"}
	kip, direct := findList(run.List, "kip", enc), findList(run.List, "direct", enc)
	if kip == nil || direct == nil || kip.Median == 0 || direct.Median == 0 {
		return g
	}
	r := kip.Median / direct.Median
	g.got = fmt.Sprintf("%.2f× (%.2f vs %.2f s)", r, kip.Median, direct.Median)
	g.met = is(r <= 1.05)
	return g
}

func listMemory(run *results.Run, enc string) goal {
	g := goal{name: fmt.Sprintf("large LIST proxy RSS growth (Accept-Encoding %s)", encodingName(enc)), want: "< 10% of the response"}
	kip := findList(run.List, "kip", enc)
	if kip == nil || kip.ProxyRSSGrowth == nil || kip.Bytes == 0 {
		return g
	}
	share := float64(*kip.ProxyRSSGrowth) / float64(kip.Bytes)
	g.got = fmt.Sprintf("%.1f%% (%s of %s)", share*100, mib(float64(*kip.ProxyRSSGrowth)), mib(float64(kip.Bytes)))
	g.met = is(share < 0.10)
	return g
}

// goalWatchers is the fan-out the watch goals are set at.
const goalWatchers = 10000

// atGoalScale turns a met verdict from a smaller fan-out into a note:
// per-watch costs and delivery tails only show at the goal's scale.
func atGoalScale(g goal, watchers int) goal {
	if g.met != nil && *g.met && watchers < goalWatchers {
		g.note = fmt.Sprintf("met at %d (goal is at 10,000)", watchers)
	}
	return g
}

func watchMemory(run *results.Run) goal {
	g := goal{name: "watch memory", want: "≤ 24 KiB RSS per open watch at 10,000"}
	kip := findWatch(run.Watch, "kip")
	if kip == nil || kip.ProxyRSSPerWatch == nil {
		return g
	}
	g.got = fmt.Sprintf("%.1f KiB at %d watches", *kip.ProxyRSSPerWatch/1024, kip.Opened)
	g.met = is(*kip.ProxyRSSPerWatch <= 24*1024)
	return atGoalScale(g, kip.Watchers)
}

// watchLatency compares kip's delivery tail with direct watches in the
// same run: the tail is set mostly by how fast the machine can write
// 10,000 events, which no absolute bound would carry between machines.
// A watch that saw no event is a miss, however fast the others were.
func watchLatency(run *results.Run) goal {
	g := goal{name: "watch delivery p99", want: "≤ direct's p99 in the same run, at 10,000 watchers"}
	kip, direct := findWatch(run.Watch, "kip"), findWatch(run.Watch, "direct")
	if kip == nil || kip.Opened == 0 {
		return g
	}
	delivered := fmt.Sprintf("at %d watchers (%d of %d delivered)", kip.Watchers, kip.Delivered, kip.Opened)
	if direct == nil || direct.Delivered == 0 {
		g.got = fmt.Sprintf("%.0f ms %s; no direct watch result to compare with", kip.Delivery.P99, delivered)
		return g
	}
	g.got = fmt.Sprintf("%.0f ms vs direct %.0f ms %s", kip.Delivery.P99, direct.Delivery.P99, delivered)
	g.met = is(kip.Delivery.P99 <= direct.Delivery.P99 && kip.Delivered == kip.Opened)
	return atGoalScale(g, kip.Watchers)
}

func encodings(lists []results.List) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lists {
		if !seen[l.Encoding] {
			seen[l.Encoding] = true
			out = append(out, l.Encoding)
		}
	}
	return out
}

func portForward(run *results.Run) goal {
	g := goal{name: "port-forward throughput", want: "≥ 0.9× direct", got: skippedOr(run, "port-forward")}
	var kip, direct float64
	for _, p := range run.PortForward {
		switch p.Target {
		case "kip":
			kip = p.MBps
		case "direct":
			direct = p.MBps
		}
	}
	if kip == 0 || direct == 0 {
		return g
	}
	g.got = fmt.Sprintf("%.2f× (%.0f vs %.0f MB/s)", kip/direct, kip, direct)
	g.met = is(kip/direct >= 0.9)
	return g
}
