package report

import (
	"fmt"
	"strings"

	"github.com/kip-proxy/kip/bench/internal/results"
)

func smallGetSection(b *strings.Builder, run *results.Run, plots map[string]string) {
	b.WriteString("## 1. Small GET\n\nOne ConfigMap of about 500 bytes, read back to back by closed-loop workers, each request timed from before sending to after the last byte. CPU per 1,000 requests is read from /proc/<pid>/stat of the proxy process and of kube-apiserver. At concurrency 1 a process's background work weighs more per request, since each request takes longer. The way from direct to kip comes in steps: `direct` is an admin (system:masters), which kube-apiserver authorizes without RBAC and exempts from priority and fairness; `direct-user` is the user kip impersonates, sent directly; `direct-impersonating` is kip's own certificate with the Impersonate-* headers kip sends for that user, sent directly, so it adds what impersonation costs kube-apiserver; what kip adds beyond that is kip's own hop.\n\n")
	b.WriteString("Dials are the connections the client opened, spares included: Go's HTTP/2 client dials for each request that arrives while it is still connecting.\n\n")
	loadTables(b, run.SmallGet, "direct", "kube-apiserver CPU s/1k")
	image(b, plots, "small-get-cdf-1", "latency CDF, small GET, concurrency 1")
	image(b, plots, "small-get-cdf-32", "latency CDF, small GET, concurrency 32")
	image(b, plots, "small-get-throughput", "throughput, small GET")
}

func proxyOnlySection(b *strings.Builder, run *results.Run, plots map[string]string) {
	b.WriteString("## 2. Proxy only\n\nThe same GET against a trivial HTTPS upstream that answers with the very bytes kube-apiserver sent for the ConfigMap, so what remains is the proxies' own cost. `direct` is the trivial upstream itself; every proxy is a process of its own.\n\n")
	loadTables(b, run.ProxyOnly, "direct", "")
	for _, c := range concurrencies(run.ProxyOnly) {
		kip, rp := findLoad(run.ProxyOnly, "kip", c), findLoad(run.ProxyOnly, "reverse-proxy", c)
		if kip != nil && rp != nil {
			fmt.Fprintf(b, "At concurrency %d kip does %s of the bare reverse proxy's requests per second and uses %s its CPU per request.\n\n",
				c, ratio(kip.RPS, rp.RPS), cpuRatio(kip, rp))
		}
	}
	image(b, plots, "proxy-only-cdf-32", "latency CDF, proxy only, concurrency 32")
	image(b, plots, "proxy-only-throughput", "throughput, proxy only")
}

func cpuRatio(a, b *results.Load) string {
	if a.ProxyCPUPer1k == nil || b.ProxyCPUPer1k == nil {
		return na
	}
	return ratio(*a.ProxyCPUPer1k, *b.ProxyCPUPer1k)
}

// loadTables writes one table per concurrency; upstreamCPU names the
// upstream CPU column, or leaves it out when empty.
func loadTables(b *strings.Builder, loads []results.Load, base, upstreamCPU string) {
	for _, c := range concurrencies(loads) {
		fmt.Fprintf(b, "### Concurrency %d\n\n", c)
		cols := []string{"target", "requests", "req/s", "× direct", "p50 ms", "p90 ms", "p99 ms", "p50 × direct", "proxy CPU s/1k"}
		if upstreamCPU != "" {
			cols = append(cols, upstreamCPU)
		}
		t := newTable(append(cols, "dials", "errors")...)
		ref := findLoad(loads, base, c)
		for _, l := range loads {
			if l.Concurrency == c {
				t.add(loadRow(l, ref, upstreamCPU != "")...)
			}
		}
		t.write(b)
		firstErrors(b, loads, c)
	}
}

func loadRow(l results.Load, ref *results.Load, upstream bool) []string {
	var refRPS, refP50 float64
	if ref != nil {
		refRPS, refP50 = ref.RPS, ref.Latency.P50
	}
	row := []string{l.Target, fmt.Sprint(l.Requests), fmt.Sprintf("%.0f", l.RPS), ratio(l.RPS, refRPS),
		f3(l.Latency.P50), f3(l.Latency.P90), f3(l.Latency.P99), ratio(l.Latency.P50, refP50), optF3(l.ProxyCPUPer1k)}
	if upstream {
		row = append(row, optF3(l.UpstreamCPUPer1k))
	}
	return append(row, fmt.Sprint(l.Connections), fmt.Sprint(l.Errors))
}

func firstErrors(b *strings.Builder, loads []results.Load, c int) {
	for _, l := range loads {
		if l.Concurrency == c && l.FirstError != "" {
			fmt.Fprintf(b, "- %s, first error: `%s`\n", l.Target, l.FirstError)
		}
	}
}

func listSection(b *strings.Builder, run *results.Run, plots map[string]string) {
	if len(run.List) == 0 {
		return
	}
	fmt.Fprintf(b, "## 3. Large LIST\n\nOne LIST of %d ConfigMaps, read to the last byte, %d times per target and encoding. Memory is VmRSS sampled every 10 ms during the request, minus its level just before; the largest rise over the rounds. With no Accept-Encoding the client asks for no compression, as client-go does with compression disabled; with gzip, as kubectl does, kube-apiserver compresses.\n\n",
		run.List[0].Objects, len(run.List[0].Seconds))
	t := newTable("target", "Accept-Encoding", "came as", "response", "median s", "× direct", "proxy RSS growth", "of response", "kube-apiserver RSS growth", "errors")
	for _, l := range run.List {
		ref := findList(run.List, "direct", l.Encoding)
		var refMedian float64
		if ref != nil {
			refMedian = ref.Median
		}
		share := na
		if l.ProxyRSSGrowth != nil && l.Bytes > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(*l.ProxyRSSGrowth)/float64(l.Bytes))
		}
		t.add(l.Target, encodingName(l.Encoding), encodingName(l.ContentEncoding), mib(float64(l.Bytes)), f2(l.Median), ratio(l.Median, refMedian),
			optMiB(l.ProxyRSSGrowth), share, optMiB(l.UpstreamRSSGrowth), fmt.Sprint(l.Errors))
	}
	t.write(b)
	for _, l := range run.List {
		if l.FirstError != "" {
			fmt.Fprintf(b, "- %s (%s), first error: `%s`\n", l.Target, encodingName(l.Encoding), l.FirstError)
		}
	}
	image(b, plots, "list-time", "large LIST time")
}

func watchSection(b *strings.Builder, run *results.Run, plots map[string]string) {
	if len(run.Watch) == 0 {
		return
	}
	fmt.Fprintf(b, "## 4. Watch fan-out\n\n%d watches on one namespace's ConfigMaps through each target, opened 64 at a time, then one change: the delay is from sending the update to each watcher's receipt of the event. Memory per watch is (RSS with every watch open − RSS before) / watches, the largest over the rounds. kube-apiserver allows 100 HTTP/2 streams per connection (its default; --http2-max-streams-per-connection is not set), so direct clients, and kip and kubectl proxy upstream, need a connection per 100 watches; kip runs with --http2-max-streams-per-connection=10000 (unless the flags above say otherwise), so its clients need one. kubectl proxy speaks HTTP/1.1 only: one connection per watch. Client connections are those that carried watches / those dialled: Go's HTTP/2 client dials for every request that finds all connections at their stream limit, then closes the spares.\n\n", run.Watch[0].Watchers)
	t := newTable("target", "opened", "delivered", "open s", "p50 ms", "p99 ms", "max ms", "client conns used / dialled", "proxy KiB/watch", "kube-apiserver KiB/watch")
	for _, w := range run.Watch {
		t.add(w.Target, fmt.Sprint(w.Opened), fmt.Sprint(w.Delivered), f2(w.OpenSeconds), f1(w.Delivery.P50), f1(w.Delivery.P99), f1(w.Delivery.Max),
			fmt.Sprintf("%d / %d", w.ConnectionsUsed, w.Connections), optKiB(w.ProxyRSSPerWatch), optKiB(w.UpstreamRSSPerWatch))
	}
	t.write(b)
	for _, w := range run.Watch {
		if w.FirstError != "" {
			fmt.Fprintf(b, "- %s, first error: `%s`\n", w.Target, w.FirstError)
		}
	}
	image(b, plots, "watch-rss", "proxy RSS against open watches")
}

func portForwardSection(b *strings.Builder, run *results.Run) {
	if len(run.PortForward) == 0 {
		skippedSection(b, "5. Port-forward throughput", run.Skipped["port-forward"])
		return
	}
	pf := run.PortForward[0]
	fmt.Fprintf(b, "## 5. Port-forward throughput\n\nA server behind a pod port of the test node (internal/rig/testnode, the kubelet's own streaming server library) sends %s to the benchmark through `kubectl port-forward`'s machinery (client-go tools/portforward, SPDY), %d times per target. The rate is the median; CPU is per GiB moved.\n\n",
		mib(float64(pf.Bytes)), len(pf.Seconds)+pf.Errors)
	t := newTable("target", "MB/s", "× direct", "proxy CPU s/GiB", "kube-apiserver CPU s/GiB", "errors")
	var ref float64
	for _, p := range run.PortForward {
		if p.Target == "direct" {
			ref = p.MBps
		}
	}
	for _, p := range run.PortForward {
		t.add(p.Target, f1(p.MBps), ratio(p.MBps, ref), optF3(p.ProxyCPUPerGiB), optF3(p.UpstreamCPUPerGiB), fmt.Sprint(p.Errors))
	}
	t.write(b)
	for _, p := range run.PortForward {
		if p.FirstError != "" {
			fmt.Fprintf(b, "- %s, first error: `%s`\n\n", p.Target, p.FirstError)
		}
	}
}
