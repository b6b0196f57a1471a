package workload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// profileSource is where a profile comes from: kip's probe port, or
// kube-apiserver's /debug/pprof with the admin's client.
type profileSource struct {
	who    string
	client *http.Client
	base   string
}

func kipSource(env Env) profileSource {
	return profileSource{who: "kip", client: http.DefaultClient, base: env.Rig.KipProbeURL}
}

func apiServerSource(env Env) profileSource {
	direct := env.Rig.Target("direct")
	return profileSource{who: "kube-apiserver", client: direct.Client, base: direct.URL}
}

// ProfileSmallGet profiles kip under the small GET at each concurrency, and
// kube-apiserver too at concurrency 32. These requests are counted nowhere
// else: profiling costs CPU itself.
func ProfileSmallGet(ctx context.Context, env Env) ([]results.Profile, error) {
	var out []results.Profile
	for _, c := range Concurrencies {
		profiles, err := profileSmallGetAt(ctx, env, c)
		if err != nil {
			return nil, err
		}
		out = append(out, profiles...)
	}
	return out, nil
}

func profileSmallGetAt(ctx context.Context, env Env, c int) ([]results.Profile, error) {
	about := fmt.Sprintf("the small GET through kip at concurrency %d", c)
	captures := []cpuCapture{{source: kipSource(env), name: fmt.Sprintf("kip CPU, small GET c=%d", c), about: about, file: fmt.Sprintf("kip-cpu-small-get-c%d.pprof", c)}}
	if c > 1 {
		// Under load, kube-apiserver's share of impersonation shows best.
		captures = append(captures, cpuCapture{source: apiServerSource(env),
			name: fmt.Sprintf("kube-apiserver CPU, small GET through kip c=%d", c), about: about, file: fmt.Sprintf("kube-apiserver-cpu-small-get-kip-c%d.pprof", c)})
	}
	env.logf("profiling for %ds under %s", env.Sizes.ProfileSeconds, about)
	return whileLoaded(ctx, env, env.Sizes.ProfileSeconds, func(ctx context.Context) {
		load.Run(ctx, load.Batch{Target: env.Rig.Target("kip"), Path: rig.SmallPath, Concurrency: c, Requests: 1 << 30})
	}, captures)
}

// cpuCapture is one CPU profile to take while loaded, or with allocs set,
// the allocations made over the same time.
type cpuCapture struct {
	source            profileSource
	name, about, file string
	allocs            bool
}

// path is where the source serves the capture's profile.
func (c cpuCapture) path(seconds int) string {
	if c.allocs {
		return fmt.Sprintf("/debug/pprof/allocs?seconds=%d", seconds)
	}
	return fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds)
}

// pprofArgs picks what the summary counts: bytes allocated, for an
// allocation profile.
func (c cpuCapture) pprofArgs() []string {
	if c.allocs {
		return []string{"-sample_index=alloc_space"}
	}
	return nil
}

// whileLoaded runs load until the captures are done, starting them after
// a second so that they see the steady state, not the ramp.
func whileLoaded(ctx context.Context, env Env, seconds int, load func(context.Context), captures []cpuCapture) ([]results.Profile, error) {
	loadCtx, stop := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		load(loadCtx)
	}()
	defer func() { stop(); <-loaded }()
	time.Sleep(time.Second)
	errs := make(chan error, len(captures))
	for _, c := range captures {
		go func() {
			errs <- c.source.save(ctx, c.path(seconds), env.raw(c.file))
		}()
	}
	for range captures {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	var out []results.Profile
	for _, c := range captures {
		p, err := summarize(ctx, env, c.name, c.about, c.file, c.pprofArgs()...)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// save writes the profile at path on the source to file.
func (s profileSource) save(ctx context.Context, path, file string) error {
	data, err := s.fetch(ctx, path)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// fetch GETs path from the source and returns the body of a 200 answer.
func (s profileSource) fetch(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s's %s: %w", s.who, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s's %s: %s", s.who, path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// summarize reads the profile in file (under the raw folder) with
// `go tool pprof`, which is at hand wherever the benchmark can be built.
func summarize(ctx context.Context, env Env, name, about, file string, args ...string) (results.Profile, error) {
	p := results.Profile{Name: name, About: about, File: filepath.Join("raw", file)}
	var err error
	if p.Top, err = pprofTop(ctx, env.raw(file), args...); err != nil {
		return p, err
	}
	p.TopCum, err = pprofTop(ctx, env.raw(file), append(args, "-cum")...)
	return p, err
}

func pprofTop(ctx context.Context, path string, args ...string) (string, error) {
	args = append([]string{"tool", "pprof", "-top", "-nodecount=25"}, args...)
	out, err := exec.CommandContext(ctx, "go", append(args, path)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w\n%s", err, out)
	}
	return string(out), nil
}

// goroutines returns the first line of a goroutine profile, which counts them.
func goroutines(ctx context.Context, s profileSource, file string) (string, error) {
	if err := s.save(ctx, "/debug/pprof/goroutine?debug=1", file); err != nil {
		return "", err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(data), "\n")
	return first, nil
}

// kipMemory reads the Go runtime's stack and heap in use from kip's
// /metrics, which tells where the memory of open watches goes.
func kipMemory(ctx context.Context, env Env) (stacks, heap float64, err error) {
	body, err := kipSource(env).fetch(ctx, "/metrics")
	if err != nil {
		return 0, 0, err
	}
	if stacks, err = gauge(body, "go_memstats_stack_inuse_bytes"); err != nil {
		return 0, 0, err
	}
	heap, err = gauge(body, "go_memstats_heap_inuse_bytes")
	return stacks, heap, err
}

// gauge finds an unlabelled sample in Prometheus text exposition.
func gauge(exposition []byte, name string) (float64, error) {
	m, err := harness.ParseMetrics(bytes.NewReader(exposition))
	if err != nil {
		return 0, err
	}
	return m.Value(name)
}
