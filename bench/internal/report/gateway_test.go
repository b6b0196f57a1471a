package report

import (
	"strings"
	"testing"

	"github.com/kip-proxy/kip/bench/internal/results"
)

func sampleGateway() *results.Gateway {
	load := func(target string, rps, cpu float64) results.Load {
		return results.Load{Target: target, Concurrency: 32, Requests: 100, RPS: rps, ProxyCPUPer1k: ptr(cpu)}
	}
	return &results.Gateway{
		Clusters: 3,
		Routing:  []results.Load{load("kip", 1000, 0.200), load("kip-gateway", 980, 0.204)},
		Registry: &results.Registry{
			Clusters: 1000, BaselineClusters: 1,
			StartupSeconds: 0.8, BaselineStartupSeconds: 0.2,
			RSS: 60 << 20, BaselineRSS: 40 << 20, RSSPerCluster: 20.5 * 1024,
			Connections: 1, BaselineConnections: 1, AfterFirstUse: 2,
			Changes: []results.Change{{Kind: "add", Seconds: []float64{0.5, 0.6}, Median: 0.6, Max: 0.6}},
		},
	}
}

// TestGatewayGoals checks each gateway goal met in one case and missed in
// another, and that runs without gateway results keep their goals table.
func TestGatewayGoals(t *testing.T) {
	for _, tc := range []struct {
		name, goal string
		tweak      func(*results.Gateway)
		verdict    string
		got        string
	}{
		{"routing as fast", "gateway routing throughput, small GET c=32", func(*results.Gateway) {},
			"met", "0.98× (980 vs 1000 req/s, 3 clusters)"},
		{"routing slower", "gateway routing throughput, small GET c=32", func(g *results.Gateway) { g.Routing[1].RPS = 900 },
			"**missed**", "0.90×"},
		{"routing with errors", "gateway routing throughput, small GET c=32", func(g *results.Gateway) { g.Routing[1].Errors = 1 },
			"**missed**", "0.98×"},
		{"routing CPU as low", "gateway routing CPU per request, c=32", func(*results.Gateway) {},
			"met", "1.02× (0.204 vs 0.200 s per 1,000)"},
		{"routing CPU higher", "gateway routing CPU per request, c=32", func(g *results.Gateway) { g.Routing[1].ProxyCPUPer1k = ptr(0.22) },
			"**missed**", "1.10×"},
		{"routing CPU unmeasured", "gateway routing CPU per request, c=32", func(g *results.Gateway) { g.Routing[0].ProxyCPUPer1k = nil },
			"n/a", ""},
		{"memory under", "gateway RSS per idle cluster", func(*results.Gateway) {},
			"met", "20.5 KiB at 1000 clusters (60.0 MiB vs 40.0 MiB with 1)"},
		{"memory over", "gateway RSS per idle cluster", func(g *results.Gateway) { g.Registry.RSSPerCluster = 65 * 1024 },
			"**missed**", "65.0 KiB"},
		{"memory under, small registry", "gateway RSS per idle cluster", func(g *results.Gateway) { g.Registry.Clusters = 20 },
			"met at 20 (goal is at 1,000)", "at 20 clusters"},
		{"changes fast", "gateway change applied", func(*results.Gateway) {},
			"met", "slowest 0.600 s of 2 changes at 1000 clusters"},
		{"one change slow", "gateway change applied", func(g *results.Gateway) { g.Registry.Changes[0].Max = 1.2 },
			"**missed**", "slowest 1.200 s"},
		{"a change never applied", "gateway change applied", func(g *results.Gateway) { g.Registry.FirstError = "timeout" },
			"**missed**", ""},
		{"startup fast", "gateway startup to /readyz", func(*results.Gateway) {},
			"met", "0.800 s at 1000 clusters (0.200 s with 1)"},
		{"startup slow", "gateway startup to /readyz", func(g *results.Gateway) { g.Registry.StartupSeconds = 5 },
			"**missed**", "5.000 s"},
		{"no connection per cluster", "gateway connections before first use", func(*results.Gateway) {},
			"met", "1 to kube-apiserver with 1000 idle clusters (1 with 1); 2 after one request"},
		{"connections at registration", "gateway connections before first use", func(g *results.Gateway) { g.Registry.Connections = 1000 },
			"**missed**", "1000 to kube-apiserver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := sampleRun()
			run.Gateway = sampleGateway()
			tc.tweak(run.Gateway)
			g, ok := goalNamed(run, tc.goal)
			if !ok {
				t.Fatalf("no goal %q", tc.goal)
			}
			if g.verdict() != tc.verdict || !strings.Contains(g.got, tc.got) {
				t.Errorf("verdict %q, got %q; want %q and a figure containing %q", g.verdict(), g.got, tc.verdict, tc.got)
			}
		})
	}
	if gs := gatewayGoals(sampleRun()); len(gs) != 0 {
		t.Errorf("a run without gateway results has gateway goals: %v", gs)
	}
}

func TestGatewaySection(t *testing.T) {
	run := sampleRun()
	run.Gateway = sampleGateway()
	md := Markdown(run, nil, "")
	for _, want := range []string{"## 7. Gateway", "### Routing", "| kip-gateway | 100 | 980 | 0.98× |", "### Registry", "RSS per registered idle cluster: 20.5 KiB", "| add | 2 | 0.600 | 0.600 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
