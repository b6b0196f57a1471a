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
	exchange := func(target, token string, generatedKey bool, c int, p50, cpu float64) results.Exchange {
		return results.Exchange{Token: token, GeneratedKey: generatedKey, User: "user@example.com", Load: results.Load{
			Target: target, Concurrency: c, Requests: 100, RPS: 500, Latency: results.Latency{P50: p50, P99: 3 * p50}, ProxyCPUPer1k: ptr(cpu),
		}}
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
		Exchange: []results.Exchange{
			exchange("oidc-csr", "oidc", false, 1, 1.0, 0.9), exchange("webhook-csr", "webhook", false, 1, 0.8, 0.7),
			exchange("oidc-generated-key", "oidc", true, 1, 1.2, 1.0),
			exchange("oidc-csr", "oidc", false, 8, 2.0, 0.8), exchange("webhook-csr", "webhook", false, 8, 1.6, 0.6),
			exchange("oidc-generated-key", "oidc", true, 8, 2.4, 0.9),
		},
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

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	md, err := Write(dir, sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| kip | 100 | 900 | 0.90× |", "0.75×", "![proxy RSS against open watches](watch-rss.png)", "| oidc-csr | OIDC ID token with a CSR | 100 |"} {
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

// TestExchangeReport covers the credential exchange's goals and section,
// including results.json files written before kip served the exchange.
func TestExchangeReport(t *testing.T) {
	slow := sampleRun()
	slow.Exchange[0].Latency.P50 = 6
	webhookOnly := sampleRun()
	webhookOnly.Exchange = []results.Exchange{webhookOnly.Exchange[1], webhookOnly.Exchange[4]}
	for _, tc := range []struct {
		name           string
		run            *results.Run
		p50, cpu       string // verdicts
		p50Got, cpuGot string
		md             []string
	}{
		{name: "measured", run: sampleRun(), p50: "met", cpu: "reported",
			p50Got: "1.000 ms (OIDC ID token with a CSR, c=1); 2.000 ms at c=8",
			cpuGot: "0.800 ms (OIDC ID token with a CSR, c=8); 1.6× kip's CPU per small GET at c=32",
			md:     []string{"### Concurrency 8", "| oidc-generated-key | OIDC ID token, key generated by kip |", "takes 0.91× the p50 of a small GET", "measure that cache"}},
		{name: "slow", run: slow, p50: "**missed**", cpu: "reported", p50Got: "6.000 ms", md: []string{"| 6.000 |"}},
		{name: "webhook only", run: webhookOnly, p50: "met", cpu: "reported", p50Got: "0.800 ms (webhook token with a CSR, c=1)", cpuGot: "0.600 ms (webhook token"},
		{name: "results from before the exchange", run: withoutExchange("not yet implemented: kip does not issue certificates (TokenCredentialRequest) yet"),
			p50: "n/a", cpu: "n/a", p50Got: "not yet implemented", cpuGot: "not yet implemented", md: []string{"No numbers: not yet implemented"}},
		{name: "failed", run: withoutExchange("failed: starting Hydra: no binary"), p50: "n/a", cpu: "n/a", p50Got: "failed",
			md: []string{"No numbers: failed: starting Hydra: no binary."}},
		{name: "not run", run: withoutExchange(""), p50: "n/a", cpu: "n/a", p50Got: "not measured", md: []string{"No numbers: not run."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs := map[string]goal{}
			for _, g := range goals(tc.run) {
				gs[g.name] = g
			}
			p50, cpu := gs["credential exchange p50"], gs["kip CPU per exchange"]
			if p50.verdict() != tc.p50 || cpu.verdict() != tc.cpu {
				t.Errorf("verdicts %q and %q, want %q and %q", p50.verdict(), cpu.verdict(), tc.p50, tc.cpu)
			}
			if !strings.HasPrefix(p50.got, tc.p50Got) || !strings.HasPrefix(cpu.got, tc.cpuGot) {
				t.Errorf("got %q and %q, want them to start with %q and %q", p50.got, cpu.got, tc.p50Got, tc.cpuGot)
			}
			md := Markdown(tc.run, nil)
			for _, want := range append(tc.md, "## 6. Credential exchange (TokenCredentialRequest)") {
				if !strings.Contains(md, want) {
					t.Errorf("report lacks %q", want)
				}
			}
		})
	}
}

// withoutExchange is a run without exchange results, skipped for reason
// unless it is empty.
func withoutExchange(reason string) *results.Run {
	run := sampleRun()
	run.Exchange = nil
	if reason != "" {
		run.Skipped = map[string]string{"credential exchange": reason}
	}
	return run
}
