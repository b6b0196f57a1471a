package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kip-proxy/kip/bench/internal/report"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/bench/internal/workload"
	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// run parses args, starts the rig, runs the workloads, writes the report
// and prints it to stdout. Progress goes to stderr. A workload that fails
// is noted in the report, the rest still run, and run returns the error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	if cfg.reportOnly {
		return rewriteReport(cfg.out, stdout)
	}
	root, err := binaries.FindRepoRoot()
	if err != nil {
		return err
	}
	// kip is built into a directory of this run's own.
	defer harness.RemoveBuild()
	started := time.Now()
	out := cfg.out
	if out == "" {
		out = filepath.Join(root, "bench", "results", started.Format("2006-01-02"))
	}
	env, stopRig, err := startRig(ctx, cfg, root, filepath.Join(out, "raw"), stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopRig()) }()

	res := &results.Run{Started: started, Smoke: cfg.smoke, Machine: machine(), Skipped: map[string]string{}}
	res.Versions = versions(ctx, root, env.Rig)
	res.Setup = env.Rig.Setup
	runErr := runWorkloads(ctx, cfg, env, res)
	res.Seconds = time.Since(started).Seconds()
	res.Machine.LoadAfter = loadAverage()
	md, err := report.Write(out, res)
	if err != nil {
		return errors.Join(runErr, err)
	}
	_, _ = fmt.Fprint(stdout, md)
	_, _ = fmt.Fprintf(stderr, "report written to %s\n", filepath.Join(out, "report.md"))
	return runErr
}

func startRig(ctx context.Context, cfg config, root, rawDir string, log io.Writer) (workload.Env, func() error, error) {
	if err := os.MkdirAll(rawDir, 0o700); err != nil {
		return workload.Env{}, nil, err
	}
	bins, err := rig.Build(ctx, root, filepath.Join(root, ".cache", "bin"), log)
	if err != nil {
		return workload.Env{}, nil, err
	}
	r, err := rig.Start(ctx, rig.Options{
		RepoRoot: root, Dir: rawDir, Binaries: bins, Log: log,
		Extras: cfg.extras, ExtrasWait: cfg.extrasWait,
		KipFlags: cfg.kipFlags, KipEnv: cfg.kipEnv,
	})
	if err != nil {
		return workload.Env{}, nil, err
	}
	return workload.Env{Rig: r, Sizes: cfg.sizes, Log: log, RawDir: rawDir}, r.Stop, nil
}

// runWorkloads runs the chosen workloads in order. A failure is noted in
// res and the next workload still runs: one broken target should not cost
// the whole run.
func runWorkloads(ctx context.Context, cfg config, env workload.Env, res *results.Run) error {
	var errs []error
	for _, w := range allWorkloads {
		if !slices.Contains(cfg.workloads, w) {
			continue
		}
		if err := runWorkload(ctx, w, env, res); err != nil {
			res.Skipped[reportName(w)] = "failed: " + err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func runWorkload(ctx context.Context, w string, env workload.Env, res *results.Run) error {
	var err error
	switch w {
	case wSmallGet:
		res.SmallGet = workload.SmallGet(ctx, env)
	case wProfile:
		if env.Sizes.ProfileSeconds > 0 {
			var profiles []results.Profile
			profiles, err = workload.ProfileSmallGet(ctx, env)
			res.Profiles = append(res.Profiles, profiles...)
		}
	case wProxyOnly:
		var setup []string
		var profiles []results.Profile
		res.ProxyOnly, setup, profiles, err = workload.ProxyOnly(ctx, env)
		res.Profiles = append(res.Profiles, profiles...)
		for _, s := range setup {
			res.Setup = append(res.Setup, "proxy-only "+s)
		}
	case wList:
		var profiles []results.Profile
		res.List, profiles, err = workload.LargeList(ctx, env)
		res.Profiles = append(res.Profiles, profiles...)
	case wWatch:
		var heap *results.Profile
		if res.Watch, heap, err = workload.Watch(ctx, env); heap != nil {
			res.Profiles = append(res.Profiles, *heap)
		}
	case wPortForward:
		var profiles []results.Profile
		res.PortForward, profiles, err = workload.PortForward(ctx, env)
		res.Profiles = append(res.Profiles, profiles...)
	case wExchange:
		var setup []string
		res.Exchange, setup, err = workload.CredentialExchange(ctx, env)
		for _, s := range setup {
			res.Setup = append(res.Setup, "credential-exchange "+s)
		}
	case wGatewayRoute:
		var gw *results.Gateway
		var setup []string
		gw, setup, err = workload.GatewayRouting(ctx, env)
		if gw != nil {
			if res.Gateway != nil {
				gw.Registry = res.Gateway.Registry
			}
			res.Gateway = gw
		}
		res.Setup = append(res.Setup, setup...)
	case wGatewayReg:
		var setup []string
		if res.Gateway == nil {
			res.Gateway = &results.Gateway{}
		}
		res.Gateway.Registry, setup, err = workload.GatewayRegistry(ctx, env)
		res.Setup = append(res.Setup, setup...)
	case wRecording:
		var setup []string
		var profiles []results.Profile
		res.Recording, setup, profiles, err = workload.Recording(ctx, env)
		res.Setup = append(res.Setup, setup...)
		res.Profiles = append(res.Profiles, profiles...)
	}
	return err
}

// reportName is how the report names a workload in its Skipped map.
func reportName(w string) string {
	switch w {
	case wExchange:
		return "credential exchange"
	default:
		return w
	}
}

// rewriteReport renders the report in dir again from its results.json.
func rewriteReport(dir string, stdout io.Writer) error {
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var res results.Run
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(dir, "results.json"), err)
	}
	md, err := report.Write(dir, &res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, md)
	return err
}
