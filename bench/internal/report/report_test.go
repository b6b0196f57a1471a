package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/bench/internal/results"
)

func ptr[T any](v T) *T { return &v }

// sampleRun is a small run with every section filled in.
func sampleRun() *results.Run {
	cdf := []results.Point{{X: 0.5, Y: 0.5}, {X: 1, Y: 1}}
	load := func(target string, c int, rps, p50 float64) results.Load {
		return results.Load{Target: target, Concurrency: c, Requests: 100, RPS: rps, Latency: results.Latency{P50: p50}, CDF: cdf, ProxyCPUPer1k: ptr(0.5)}
	}
	return &results.Run{
		Started: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC),
		Machine: results.Machine{Cores: 2, CPUModel: "test CPU"},
		SmallGet: []results.Load{
			load("direct", 1, 1000, 1.0), load("kip", 1, 900, 1.1),
			load("direct", 32, 4000, 8), load("kip", 32, 3000, 10),
		},
		ProxyOnly: []results.Load{
			load("direct", 32, 10000, 3), load("reverse-proxy", 32, 6000, 5), load("kip", 32, 4500, 7), load("kubectl-proxy", 32, 4000, 8),
		},
		List: []results.List{
			{Target: "direct", Objects: 10, Bytes: 100 << 20, Seconds: []float64{1}, Median: 1},
			{Target: "kip", Objects: 10, Bytes: 100 << 20, Seconds: []float64{1.2}, Median: 1.2, ProxyRSSGrowth: ptr(int64(5 << 20))},
		},
		Watch: []results.Watch{
			{Target: "kip", Watchers: 2000, Opened: 2000, Delivered: 2000, Delivery: results.Latency{P99: 300},
				ProxyRSSPerWatch: ptr(40.0 * 1024), Curve: []results.Point{{X: 1000, Y: 40}, {X: 2000, Y: 80}}},
		},
		PortForward: []results.PortForward{{Target: "direct", MBps: 100}, {Target: "kip", MBps: 90}},
		Skipped:     map[string]string{"credential exchange": "not yet implemented: no issuer"},
	}
}

func TestGoals(t *testing.T) {
	want := map[string]string{
		"added latency, small GET, c=1, p50":                 "met",
		"throughput, small GET, c=32":                        "**missed**",
		"proxy-only throughput, c=32":                        "met",
		"large LIST time (Accept-Encoding none)":             "**missed**",
		"large LIST proxy RSS growth (Accept-Encoding none)": "met",
		"watch memory":            "**missed**",
		"watch delivery p99":      "met at 2000 (goal is at 10,000)",
		"port-forward throughput": "met",
		"credential exchange p50": "n/a",
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

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	md, err := Write(dir, sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| kip | 100 | 900 | 0.90× |", "0.75×", "![proxy RSS against open watches](watch-rss.png)", "not yet implemented"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, f := range []string{"report.md", "results.json", "small-get-cdf-1.png", "small-get-throughput.png", "proxy-only-throughput.png", "list-time.png", "watch-rss.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back results.Run
	if err := json.Unmarshal(data, &back); err != nil || len(back.SmallGet) != 4 {
		t.Errorf("results.json does not read back: %v, %d small GET results", err, len(back.SmallGet))
	}
}
