package rig

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// Binaries are the programs the rig builds from this checkout.
type Binaries struct {
	Kip          string
	ReverseProxy string
}

// Build compiles kip (through the harness, once per run) and the bare
// reverse proxy into cacheDir. Go's build cache makes a rebuild of
// unchanged code quick, and building every time means the benchmark
// measures the code in the checkout. The caller removes kip's build with
// harness.RemoveBuild.
func Build(ctx context.Context, repoRoot, cacheDir string, log io.Writer) (Binaries, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Binaries{}, err
	}
	kip, err := harness.BuildKip(ctx, log)
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Kip: kip, ReverseProxy: filepath.Join(cacheDir, "bench-revproxy")}
	return b, harness.GoBuild(ctx, repoRoot, "./bench/revproxy", b.ReverseProxy, log)
}
