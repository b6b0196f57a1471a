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

// goals compares kip with its goals.
func goals(run *results.Run) []goal {
	gs := []goal{addedLatency(run), throughput(run), proxyOnly(run)}
	for _, enc := range encodings(run.List) {
		gs = append(gs, listTime(run, enc), listMemory(run, enc))
	}
	gs = append(gs, watchMemory(run), watchLatency(run),
		portForward(run), exchangeLatency(run), exchangeCPU(run),
	)
	return gs
}

func skippedOr(run *results.Run, workload string) string {
	if reason, ok := run.Skipped[workload]; ok {
		first, _, _ := strings.Cut(reason, ":")
		return first
	}
	return "not measured"
}

func addedLatency(run *results.Run) goal {
	g := goal{name: "added latency, small GET, c=1, p50", want: "≤ 0.150 ms"}
	kip, direct := findLoad(run.SmallGet, "kip", 1), findLoad(run.SmallGet, "direct", 1)
	if kip == nil || direct == nil || kip.Requests == 0 || direct.Requests == 0 {
		return g
	}
	added := kip.Latency.P50 - direct.Latency.P50
	g.got = fmt.Sprintf("%.3f ms (%.3f vs %.3f)", added, kip.Latency.P50, direct.Latency.P50)
	if imp := findLoad(run.SmallGet, "direct-impersonating", 1); imp != nil && imp.Requests > 0 {
		g.got += fmt.Sprintf("; %.3f ms over direct-impersonating", kip.Latency.P50-imp.Latency.P50)
	}
	g.met = is(added <= 0.150)
	return g
}

func throughput(run *results.Run) goal {
	g := goal{name: "throughput, small GET, c=32", want: "≥ 0.9× direct"}
	kip, direct := findLoad(run.SmallGet, "kip", 32), findLoad(run.SmallGet, "direct", 32)
	if kip == nil || direct == nil || direct.RPS == 0 {
		return g
	}
	r := kip.RPS / direct.RPS
	g.got = fmt.Sprintf("%.2f× (%.0f vs %.0f req/s)", r, kip.RPS, direct.RPS)
	if imp := findLoad(run.SmallGet, "direct-impersonating", 32); imp != nil && imp.RPS > 0 {
		g.got += fmt.Sprintf("; %.2f× direct-impersonating", kip.RPS/imp.RPS)
	}
	g.met = is(r >= 0.9)
	return g
}

func proxyOnly(run *results.Run) goal {
	g := goal{name: "proxy-only throughput, c=32", want: "≥ 0.7× bare reverse proxy, and ahead of kubectl proxy"}
	kip, rp, kp := findLoad(run.ProxyOnly, "kip", 32), findLoad(run.ProxyOnly, "reverse-proxy", 32), findLoad(run.ProxyOnly, "kubectl-proxy", 32)
	if kip == nil || rp == nil || kp == nil || rp.RPS == 0 {
		return g
	}
	r := kip.RPS / rp.RPS
	g.got = fmt.Sprintf("%.2f× reverse proxy; %.0f vs kubectl proxy %.0f req/s", r, kip.RPS, kp.RPS)
	g.met = is(r >= 0.7 && kip.RPS > kp.RPS)
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

func watchMemory(run *results.Run) goal {
	g := goal{name: "watch memory", want: "≤ 32 KiB RSS per open watch"}
	kip := findWatch(run.Watch, "kip")
	if kip == nil || kip.ProxyRSSPerWatch == nil {
		return g
	}
	g.got = fmt.Sprintf("%.1f KiB at %d watches", *kip.ProxyRSSPerWatch/1024, kip.Opened)
	g.met = is(*kip.ProxyRSSPerWatch <= 32*1024)
	return g
}

func watchLatency(run *results.Run) goal {
	g := goal{name: "watch delivery p99", want: "≤ 1 s at 10,000 watchers"}
	kip := findWatch(run.Watch, "kip")
	if kip == nil || kip.Delivered == 0 {
		return g
	}
	g.got = fmt.Sprintf("%.0f ms at %d watchers (%d of %d delivered)", kip.Delivery.P99, kip.Watchers, kip.Delivered, kip.Opened)
	g.met = is(kip.Delivery.P99 <= 1000 && kip.Delivered == kip.Opened)
	if *g.met && kip.Watchers < 10000 {
		// At fewer watchers than the goal names it is a hint, not a verdict.
		g.note = fmt.Sprintf("met at %d (goal is at 10,000)", kip.Watchers)
	}
	return g
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
	g := goal{name: "port-forward throughput", want: "≥ 0.8× direct", got: skippedOr(run, "port-forward")}
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
	g.met = is(kip/direct >= 0.8)
	return g
}
