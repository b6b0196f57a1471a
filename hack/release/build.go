package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// versionPkg holds the variables that `kip version` prints.
const versionPkg = "github.com/kip-proxy/kip/internal/version"

// platform is one GOOS/GOARCH pair kip ships for.
type platform struct{ OS, Arch string }

func (p platform) String() string { return p.OS + "/" + p.Arch }

// binary is kip's file name on p.
func (p platform) binary() string {
	if p.OS == "windows" {
		return "kip.exe"
	}
	return "kip"
}

// platforms are where kip runs: the server in containers on linux, the
// client commands on every laptop.
var platforms = []platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// goBuildFlags are the flags of every release build, the container
// image's included: no paths or VCS state of the build machine in the
// binary, no symbol tables, and the version and commit stamped in.
func goBuildFlags(version, commit string) []string {
	return []string{"-trimpath", "-buildvcs=false", "-ldflags",
		fmt.Sprintf("-s -w -X %s.gitVersion=%s -X %s.gitCommit=%s", versionPkg, version, versionPkg, commit)}
}

// buildKip builds ./cmd/kip of the checkout at root for p into dir, static
// (no cgo), and returns the binary's path.
func buildKip(ctx context.Context, root, dir string, p platform, version, commit string) (string, error) {
	out := filepath.Join(dir, p.OS+"_"+p.Arch, p.binary())
	args := append([]string{"build"}, goBuildFlags(version, commit)...)
	args = append(args, "-o", out, "./cmd/kip")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kip for %s: %w\n%s", p, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// vetFor runs go vet on every package of kip's own that the kip binary is
// made of on p.
func vetFor(ctx context.Context, root string, p platform) error {
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOWORK=off")
	list := exec.CommandContext(ctx, "go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.ImportPath}}{{end}}{{end}}", "./cmd/kip")
	list.Dir, list.Env = root, env
	b, err := list.Output()
	if err != nil {
		return fmt.Errorf("listing kip's packages for %s: %w", p, err)
	}
	pkgs := strings.Fields(string(b))
	vet := exec.CommandContext(ctx, "go", append([]string{"vet", "-trimpath"}, pkgs...)...)
	vet.Dir, vet.Env = root, env
	if out, err := vet.CombinedOutput(); err != nil {
		return fmt.Errorf("go vet for %s: %w\n%s", p, err, strings.TrimSpace(string(out)))
	}
	return nil
}
