package rig

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the programs the rig builds from this checkout.
type Binaries struct {
	Kip          string
	ReverseProxy string
}

// Build compiles kip and the bare reverse proxy into cacheDir. Go's build
// cache makes a rebuild of unchanged code quick, and building every time
// means the benchmark measures the code in the checkout.
func Build(ctx context.Context, repoRoot, cacheDir string, log io.Writer) (Binaries, error) {
	b := Binaries{
		Kip:          filepath.Join(cacheDir, "kip-bench"),
		ReverseProxy: filepath.Join(cacheDir, "bench-revproxy"),
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Binaries{}, err
	}
	for pkg, out := range map[string]string{"./cmd/kip": b.Kip, "./bench/revproxy": b.ReverseProxy} {
		_, _ = fmt.Fprintf(log, "building %s\n", pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Run(); err != nil {
			return Binaries{}, fmt.Errorf("building %s: %w\n%s", pkg, err, stderr.Bytes())
		}
	}
	return b, nil
}
