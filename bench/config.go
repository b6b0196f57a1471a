package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/bench/internal/workload"
)

// Workload names, in the order they run.
const (
	wSmallGet     = "small-get"
	wProxyOnly    = "proxy-only"
	wList         = "large-list"
	wWatch        = "watch"
	wPortForward  = "port-forward"
	wExchange     = "credential-exchange"
	wProfile      = "profile"
	wGatewayRoute = "gateway-routing"
	wGatewayReg   = "gateway-registry"
	wRecording    = "recording"
)

var allWorkloads = []string{wSmallGet, wProfile, wProxyOnly, wList, wWatch, wPortForward, wExchange, wGatewayRoute, wGatewayReg, wRecording}

// config is the parsed command line.
type config struct {
	out        string
	smoke      bool
	reportOnly bool
	sizes      workload.Sizes
	workloads  []string
	extras     []rig.TargetSpec
	extrasWait time.Duration
	kipFlags   []string
	kipEnv     []string
}

// defaultSizes finish in a few minutes on two cores.
func defaultSizes() workload.Sizes {
	return workload.Sizes{
		Rounds: 5, GetRequests: 20000, ProxyRequests: 20000,
		ListObjects: 10000, ListObjectBytes: 5000, ListRounds: 3,
		Watchers: 2000, WatchRounds: 2, Settle: time.Second,
		PortForwardBytes: 256 << 20, ProfileSeconds: 10,
		ExchangeRequests: 5000, GatewayClusters: 1000,
		RecordingBytes: 64 << 20, RecordingSessions: 500,
	}
}

// smokeSizes only show that every part works.
func smokeSizes() workload.Sizes {
	return workload.Sizes{
		Rounds: 2, GetRequests: 300, ProxyRequests: 300,
		ListObjects: 50, ListObjectBytes: 5000, ListRounds: 1,
		Watchers: 20, WatchRounds: 1, Settle: 100 * time.Millisecond,
		PortForwardBytes: 1 << 20, ProfileSeconds: 1,
		ExchangeRequests: 40, GatewayClusters: 20,
		RecordingBytes: 1 << 20, RecordingSessions: 10,
	}
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	c.sizes = defaultSizes()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.out, "out", "", "results folder (default bench/results/<date>)")
	fs.BoolVar(&c.reportOnly, "report-only", false, "run nothing: rewrite report.md and the plots in --out from its results.json")
	fs.BoolVar(&c.smoke, "smoke", false, "tiny sizes, to check that the harness works; explicit size flags still apply")
	addSizeFlags(fs, &c.sizes)
	only := fs.String("workloads", strings.Join(allWorkloads, ","), "comma-separated workloads to run")
	fs.Func("target", "another `target` to measure, repeatable: name=URL[,ca=FILE][,cert=FILE,key=FILE][,token=FILE][,pid=PID]", func(s string) error {
		spec, err := rig.ParseTargetSpec(s)
		c.extras = append(c.extras, spec)
		return err
	})
	fs.Func("kip-flag", "a `flag` added to every `kip serve`, repeatable: --kip-flag=--http2-max-streams-per-connection=1000", func(s string) error {
		c.kipFlags = append(c.kipFlags, s)
		return nil
	})
	fs.Func("kip-env", "a `KEY=VALUE` added to kip's environment, repeatable: --kip-env=GOGC=200", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("--kip-env %q: want KEY=VALUE", s)
		}
		c.kipEnv = append(c.kipEnv, s)
		return nil
	})
	fs.DurationVar(&c.extrasWait, "target-wait", 3*time.Minute, "how long to wait for extra targets to answer")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.kipEnv = withChartGOMAXPROCS(c.kipEnv)
	if c.reportOnly && c.out == "" {
		return config{}, fmt.Errorf("--report-only needs --out")
	}
	if c.smoke {
		c.sizes = smokeOverridden(fs)
	}
	var err error
	if c.workloads, err = parseWorkloads(*only); err != nil {
		return config{}, err
	}
	return c, validateSizes(c.sizes)
}

func addSizeFlags(fs *flag.FlagSet, s *workload.Sizes) {
	fs.IntVar(&s.Rounds, "rounds", s.Rounds, "turns each GET workload takes over the targets")
	fs.IntVar(&s.GetRequests, "get-requests", s.GetRequests, "small GET requests per target at concurrency 32 (a fifth at concurrency 1)")
	fs.IntVar(&s.ProxyRequests, "proxy-requests", s.ProxyRequests, "proxy-only requests per target at concurrency 32 (a fifth at concurrency 1)")
	fs.IntVar(&s.ListObjects, "list-objects", s.ListObjects, "ConfigMaps in the large LIST")
	fs.IntVar(&s.ListObjectBytes, "list-object-bytes", s.ListObjectBytes, "payload bytes per listed ConfigMap")
	fs.IntVar(&s.ListRounds, "list-rounds", s.ListRounds, "LISTs per target and encoding")
	fs.IntVar(&s.Watchers, "watchers", s.Watchers, "concurrent watches per target (up to 10000)")
	fs.IntVar(&s.WatchRounds, "watch-rounds", s.WatchRounds, "watch fan-outs per target")
	fs.Int64Var(&s.PortForwardBytes, "portforward-bytes", s.PortForwardBytes, "bytes copied through each port-forward")
	fs.IntVar(&s.ExchangeRequests, "exchange-requests", s.ExchangeRequests, "credential exchanges per kind of token and key at concurrency 8 (a fifth at concurrency 1)")
	fs.IntVar(&s.GatewayClusters, "gateway-clusters", s.GatewayClusters, "clusters registered with the large gateway kip (the small one has 1)")
	fs.Int64Var(&s.RecordingBytes, "recording-bytes", s.RecordingBytes, "bytes each exec writes to stdout, and each port-forward copies, in the recording workload")
	fs.IntVar(&s.RecordingSessions, "recording-sessions", s.RecordingSessions, "idle exec sessions held open through each kip in the recording workload")
	fs.IntVar(&s.ProfileSeconds, "profile-seconds", s.ProfileSeconds, "seconds of each CPU profile (small GET at concurrency 1 and 32, large LIST); 0 takes none")
}

// smokeOverridden returns the smoke sizes, except where a size flag was
// given explicitly.
func smokeOverridden(fs *flag.FlagSet) workload.Sizes {
	smoke := smokeSizes()
	sf := flag.NewFlagSet("smoke", flag.ContinueOnError)
	addSizeFlags(sf, &smoke)
	fs.Visit(func(f *flag.Flag) {
		if sf.Lookup(f.Name) != nil {
			_ = sf.Set(f.Name, f.Value.String()) // parsed once already, so valid
		}
	})
	return smoke
}

func parseWorkloads(s string) ([]string, error) {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if !slices.Contains(allWorkloads, w) {
			return nil, fmt.Errorf("unknown workload %q (have %s)", w, strings.Join(allWorkloads, ", "))
		}
		out = append(out, w)
	}
	return out, nil
}

func validateSizes(s workload.Sizes) error {
	for name, v := range map[string]int{
		"--rounds": s.Rounds, "--get-requests": s.GetRequests, "--proxy-requests": s.ProxyRequests,
		"--list-objects": s.ListObjects, "--list-object-bytes": s.ListObjectBytes, "--list-rounds": s.ListRounds,
		"--watchers": s.Watchers, "--watch-rounds": s.WatchRounds, "--exchange-requests": s.ExchangeRequests,
		"--recording-sessions": s.RecordingSessions,
	} {
		if v < 1 {
			return fmt.Errorf("%s must be at least 1, not %d", name, v)
		}
	}
	if s.GatewayClusters < 2 {
		return fmt.Errorf("--gateway-clusters must be at least 2, not %d", s.GatewayClusters)
	}
	if s.Watchers > 10000 {
		return fmt.Errorf("--watchers %d: at most 10000", s.Watchers)
	}
	if s.ProfileSeconds < 0 || s.PortForwardBytes < 1 || s.RecordingBytes < 1 {
		return fmt.Errorf("--profile-seconds must not be negative, and --portforward-bytes and --recording-bytes must be positive")
	}
	return nil
}

// chartGOMAXPROCS is what kip's chart sets for its default CPU request of
// 200m: one P. The benchmark runs kip as the chart deploys it, unless
// --kip-env names GOMAXPROCS itself.
const chartGOMAXPROCS = "GOMAXPROCS=1"

func withChartGOMAXPROCS(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return env
		}
	}
	return append([]string{chartGOMAXPROCS}, env...)
}
