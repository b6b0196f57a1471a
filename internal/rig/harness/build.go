package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// kipPackage is what every harness kip is built from.
const kipPackage = "github.com/kip-proxy/kip/cmd/kip"

// kipBuild is the one build of kip per test binary or benchmark run. A
// directory of the process's own, not the shared .cache, holds it: other
// checkouts share that cache and build kip from other sources.
var kipBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildKip builds kip from this checkout the first time it is called and
// returns the same binary after that. Go's build cache makes the first
// call quick when nothing changed; building every run means the tests
// and the benchmark measure the code in the checkout.
func BuildKip(ctx context.Context, log io.Writer) (string, error) {
	kipBuild.once.Do(func() {
		kipBuild.dir, kipBuild.err = os.MkdirTemp("", "kip-build-")
		if kipBuild.err != nil {
			return
		}
		bin := filepath.Join(kipBuild.dir, "kip")
		if kipBuild.err = GoBuild(ctx, "", kipPackage, bin, log); kipBuild.err == nil {
			kipBuild.bin = bin
		}
	})
	return kipBuild.bin, kipBuild.err
}

// KipBinary is BuildKip for a test: it fails the test when kip does not
// build.
func KipBinary(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := BuildKip(ctx, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// RemoveBuild removes what BuildKip built. Main calls it; a program that
// calls BuildKip calls it before it exits.
func RemoveBuild() {
	if kipBuild.dir != "" {
		_ = os.RemoveAll(kipBuild.dir)
	}
}

// GoBuild runs go build for pkg in dir (empty: the working directory),
// writing the binary to out, and says so on log.
func GoBuild(ctx context.Context, dir, pkg, out string, log io.Writer) error {
	_, _ = fmt.Fprintf(log, "building %s\n", pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, output.Bytes())
	}
	return nil
}
