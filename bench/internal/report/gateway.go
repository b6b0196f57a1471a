package report

import (
	"fmt"
	"strings"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// gatewayGoalClusters is the registry size the gateway's memory and
// startup goals are set at.
const gatewayGoalClusters = 1000

// gatewayGoals are the goals of gateway mode, only for runs that measured
// it: older reports keep their table.
func gatewayGoals(run *results.Run) []goal {
	gw := run.Gateway
	if gw == nil {
		return nil
	}
	var gs []goal
	if len(gw.Routing) > 0 {
		gs = append(gs, routingThroughput(gw), routingCPU(gw))
	}
	if r := gw.Registry; r != nil {
		gs = append(gs, registryMemory(r), registryChange(r), registryStartup(r), registryConnections(r))
	}
	return gs
}

// routingThroughput and routingCPU set a gateway fronting three clusters
// beside a single-cluster kip in the same run: what routing by cluster
// costs per request.
func routingThroughput(gw *results.Gateway) goal {
	g := goal{name: "gateway routing throughput, small GET c=32", want: "≥ 0.97× single-cluster kip"}
	gate, single := findLoad(gw.Routing, "kip-gateway", 32), served(gw.Routing, "kip", 32)
	if gate == nil || single == nil {
		return g
	}
	r := gate.RPS / single.RPS
	g.got = fmt.Sprintf("%.2f× (%.0f vs %.0f req/s, %d clusters)", r, gate.RPS, single.RPS, gw.Clusters)
	g.met = is(r >= 0.97 && gate.Errors == 0)
	return g
}

func routingCPU(gw *results.Gateway) goal {
	g := goal{name: "gateway routing CPU per request, c=32", want: "≤ 1.03× single-cluster kip's"}
	gate, single := cpuPer1k(gw.Routing, "kip-gateway", 32), cpuPer1k(gw.Routing, "kip", 32)
	if gate == nil || single == nil {
		return g
	}
	r := *gate / *single
	g.got = fmt.Sprintf("%.2f× (%.3f vs %.3f s per 1,000)", r, *gate, *single)
	g.met = is(r <= 1.03)
	return g
}

func registryMemory(r *results.Registry) goal {
	g := goal{name: "gateway RSS per idle cluster", want: "≤ 64 KiB at 1,000 clusters"}
	if r.RSS == 0 || r.BaselineRSS == 0 {
		return g
	}
	g.got = fmt.Sprintf("%.1f KiB at %d clusters (%s vs %s with %d)", r.RSSPerCluster/1024, r.Clusters, mib(float64(r.RSS)), mib(float64(r.BaselineRSS)), r.BaselineClusters)
	g.met = is(r.RSSPerCluster <= 64*1024)
	return atGatewayScale(g, r.Clusters)
}

// registryChange is judged on the slowest change of every kind: a
// rotation that sometimes takes seconds is what an operator would see.
func registryChange(r *results.Registry) goal {
	g := goal{name: "gateway change applied", want: "< 1 s"}
	if len(r.Changes) == 0 {
		return g
	}
	var slowest float64
	var n int
	for _, c := range r.Changes {
		slowest = max(slowest, c.Max)
		n += len(c.Seconds)
	}
	g.got = fmt.Sprintf("slowest %.3f s of %d changes at %d clusters", slowest, n, r.Clusters)
	g.met = is(slowest < 1 && r.FirstError == "")
	return g
}

func registryStartup(r *results.Registry) goal {
	g := goal{name: "gateway startup to /readyz", want: "< 5 s at 1,000 clusters"}
	if r.StartupSeconds == 0 {
		return g
	}
	g.got = fmt.Sprintf("%.3f s at %d clusters (%.3f s with %d)", r.StartupSeconds, r.Clusters, r.BaselineStartupSeconds, r.BaselineClusters)
	g.met = is(r.StartupSeconds < 5)
	return atGatewayScale(g, r.Clusters)
}

// registryConnections wants registration to open nothing: an idle
// registry of any size holds what a one-cluster one does.
func registryConnections(r *results.Registry) goal {
	g := goal{name: "gateway connections before first use", want: "none per registered cluster"}
	if r.RSS == 0 {
		return g
	}
	g.got = fmt.Sprintf("%d to kube-apiserver with %d idle clusters (%d with %d); %d after one request", r.Connections, r.Clusters, r.BaselineConnections, r.BaselineClusters, r.AfterFirstUse)
	g.met = is(r.Connections <= r.BaselineConnections)
	return g
}

// atGatewayScale turns a met verdict from a smaller registry into a note.
func atGatewayScale(g goal, clusters int) goal {
	if g.met != nil && *g.met && clusters < gatewayGoalClusters {
		g.note = fmt.Sprintf("met at %d (goal is at 1,000)", clusters)
	}
	return g
}

func gatewaySection(b *strings.Builder, run *results.Run) {
	gw := run.Gateway
	if gw == nil {
		return
	}
	b.WriteString("## 7. Gateway\n\n")
	if len(gw.Routing) > 0 {
		fmt.Fprintf(b, "### Routing\n\nThe small GET at concurrency 32 through a fresh single-cluster kip (`kip`) and a gateway kip (`kip-gateway`, `--clusters-dir` with %d entries), taking turns. Every entry is kip's kubeconfig for the same kube-apiserver under another name, and the gateway's requests take `/clusters/<name>/` in turn, so kip routes, checks each cluster's policy and keeps a backend per cluster; kube-apiserver's work is the same.\n\n", gw.Clusters)
		t := newTable("target", "requests", "req/s", "× kip", "p50 ms", "p99 ms", "kip CPU s/1k", "× kip", "kube-apiserver CPU s/1k", "dials", "errors")
		ref := findLoad(gw.Routing, "kip", 32)
		for _, l := range gw.Routing {
			rps, cpu := na, na
			if ref != nil {
				rps = ratio(l.RPS, ref.RPS)
				cpu = cpuRatio(&l, ref)
			}
			t.add(l.Target, fmt.Sprint(l.Requests), fmt.Sprintf("%.0f", l.RPS), rps, f3(l.Latency.P50), f3(l.Latency.P99),
				optF3(l.ProxyCPUPer1k), cpu, optF3(l.UpstreamCPUPer1k), fmt.Sprint(l.Connections), fmt.Sprint(l.Errors))
		}
		t.write(b)
		firstErrors(b, gw.Routing, 32)
	}
	if r := gw.Registry; r != nil {
		registrySection(b, r)
	}
}

func registrySection(b *strings.Builder, r *results.Registry) {
	fmt.Fprintf(b, "### Registry\n\nA gateway kip with %d entries beside one with %d, both with `--trust-cluster-client-ca=false` (the bench user's CA comes from `--client-ca-file`), so that registering a cluster reads nothing from it. Startup is from starting the process to `/readyz` answering 200, polled every 5 ms. RSS is read after a forced GC (`/debug/pprof/heap?gc=1`) and a pause, before any request went through a cluster. Connections are kip's established TCP connections to kube-apiserver, from `/proc/<pid>/fd` and `/proc/<pid>/net/tcp`.\n\n", r.Clusters, r.BaselineClusters)
	t := newTable("clusters", "startup s", "RSS", "upstream connections, idle")
	t.add(fmt.Sprint(r.BaselineClusters), f3(r.BaselineStartupSeconds), mib(float64(r.BaselineRSS)), fmt.Sprint(r.BaselineConnections))
	t.add(fmt.Sprint(r.Clusters), f3(r.StartupSeconds), mib(float64(r.RSS)), fmt.Sprint(r.Connections))
	t.write(b)
	fmt.Fprintf(b, "RSS per registered idle cluster: %.1f KiB. After one request through one of the %d clusters kip held %d connections to kube-apiserver.\n\n", r.RSSPerCluster/1024, r.Clusters, r.AfterFirstUse)
	b.WriteString("Then, on the large registry, a new cluster's file is written (as a dotfile, renamed into place), rotated to a dead address, rotated back and removed, each timed from the change until `GET /clusters/<name>/version` every 5 ms shows it.\n\n")
	t = newTable("change", "times", "median s", "max s")
	for _, c := range r.Changes {
		t.add(c.Kind, fmt.Sprint(len(c.Seconds)), f3(c.Median), f3(c.Max))
	}
	t.write(b)
	if r.FirstError != "" {
		fmt.Fprintf(b, "- first error: `%s`\n\n", r.FirstError)
	}
}
