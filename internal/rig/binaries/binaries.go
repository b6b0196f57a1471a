package binaries

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kip-proxy/kip/internal/rig/childproc"
)

// Options says where to find the tools modules and where to cache binaries.
type Options struct {
	// RepoRoot is the kip checkout holding hack/tools. Empty means
	// FindRepoRoot.
	RepoRoot string
	// CacheDir holds the built binaries. Empty means <RepoRoot>/.cache/bin.
	CacheDir string
	// Log receives a line before and after each build, which can take
	// minutes. Nil discards them.
	Log io.Writer
}

// Paths are the absolute paths of the built binaries.
type Paths struct {
	Etcd          string
	KubeAPIServer string
	Kubectl       string
	// Hydra is Ory Hydra, the OIDC provider that tests and `kip dev` sign
	// in with.
	Hydra string
}

// target is one binary and how to build it.
type target struct {
	name    string // file name of the binary
	dir     string // cache subfolder, named after the version
	module  string // tools module, relative to the repo root
	pkg     string // package to build, as named inside module
	ldflags string
	tags    string // build tags, comma-separated
	// cgo forces CGO_ENABLED=1, for binaries that are useless without it:
	// without cgo, Hydra's SQLite driver compiles to a stub that fails only
	// at run time.
	cgo bool
	// pinPath and pinVersion are the requirement module's go.mod must carry
	// for the binary to be the version dir claims.
	pinPath, pinVersion string
	// coldBuild is how long a build with an empty Go cache takes on two
	// cores, so a user staring at a silent terminal knows what to expect.
	coldBuild string
}

// toolSet is every binary Ensure provides.
type toolSet struct{ etcd, apiServer, kubectl, hydra target }

// targets describes how to build each binary.
func targets() toolSet {
	kubeDir := "kube-" + KubeVersion
	etcd := target{
		name: "etcd", dir: "etcd-" + EtcdVersion,
		module: "hack/tools/etcd", pkg: ".",
		pinPath: "go.etcd.io/etcd/server/v3", pinVersion: EtcdVersion,
		coldBuild: "1 min",
	}
	apiServer := target{
		name: "kube-apiserver", dir: kubeDir,
		module: "hack/tools/kube", pkg: "k8s.io/kubernetes/cmd/kube-apiserver",
		ldflags: kubeLDFlags(),
		pinPath: "k8s.io/kubernetes", pinVersion: KubeVersion,
		coldBuild: "6 to 12 min, the longer when other builds share the cores",
	}
	kubectl := apiServer
	kubectl.name, kubectl.pkg, kubectl.coldBuild = "kubectl", "k8s.io/kubernetes/cmd/kubectl", "1 to 3 min"
	hydra := target{
		name: "hydra", dir: "hydra-" + HydraVersion,
		module: "hack/tools/hydra", pkg: "github.com/ory/hydra/v2",
		ldflags: hydraLDFlags(),
		// The in-memory database kip runs Hydra with is SQLite, which is
		// compiled in only with these tags (and cgo).
		tags: "sqlite,sqlite_omit_load_extension", cgo: true,
		pinPath: "github.com/ory/hydra/v2", pinVersion: HydraVersion,
		coldBuild: "2 to 6 min, the longer when other builds share the cores",
	}
	return toolSet{etcd: etcd, apiServer: apiServer, kubectl: kubectl, hydra: hydra}
}

// all lists the binaries in build order: kube-apiserver before kubectl,
// since kubectl then reuses most of the compiled packages.
func (ts toolSet) all() []target { return []target{ts.etcd, ts.apiServer, ts.kubectl, ts.hydra} }

func (ts toolSet) paths(cacheDir string) Paths {
	return Paths{
		Etcd:          ts.etcd.path(cacheDir),
		KubeAPIServer: ts.apiServer.path(cacheDir),
		Kubectl:       ts.kubectl.path(cacheDir),
		Hydra:         ts.hydra.path(cacheDir),
	}
}

// kubeLDFlags stamps the version into the Kubernetes binaries, which
// otherwise report v0.0.0 from /version. The build date is fixed so that
// builds are reproducible and hit the Go cache.
func kubeLDFlags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(KubeVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	const pkg = "k8s.io/component-base/version."
	return strings.Join([]string{
		"-X " + pkg + "gitVersion=" + KubeVersion,
		"-X " + pkg + "gitMajor=" + major,
		"-X " + pkg + "gitMinor=" + minor,
		"-X " + pkg + "gitTreeState=clean",
		"-X " + pkg + "buildDate=2026-11-01T00:00:00Z",
	}, " ")
}

// hydraLDFlags stamp the version into Hydra, which otherwise calls itself
// "master" in its logs and on /version.
func hydraLDFlags() string {
	return "-X github.com/ory/hydra/v2/driver/config.Version=" + HydraVersion
}

func (t target) path(cacheDir string) string { return filepath.Join(cacheDir, t.dir, t.name) }

// Ensure returns the paths of etcd, kube-apiserver, kubectl and Hydra,
// building whichever is not cached yet. A cold build takes several minutes, so
// callers should allow for that in their timeouts.
func Ensure(ctx context.Context, opts Options) (Paths, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Paths{}, err
	}
	tools := targets()
	paths := tools.paths(opts.CacheDir)
	all := tools.all()
	if allBuilt(opts.CacheDir, all) {
		return paths, nil
	}

	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return Paths{}, err
	}
	unlock, err := lockDir(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return Paths{}, err
	}
	defer unlock()
	for _, t := range all {
		// Checked again under the lock: another process may have built it
		// while we waited.
		if isBuilt(t.path(opts.CacheDir)) {
			continue
		}
		if err := checkPin(opts.RepoRoot, t); err != nil {
			return Paths{}, err
		}
		if err := build(ctx, opts, t); err != nil {
			return Paths{}, err
		}
	}
	return paths, nil
}

// withDefaults fills in the checkout around the working directory, its
// .cache/bin, and a discarded log.
func (opts Options) withDefaults() (Options, error) {
	if opts.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return opts, err
		}
		opts.RepoRoot = root
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(opts.RepoRoot, ".cache", "bin")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	return opts, nil
}

// ensureOne returns the path of one tool outside the set Ensure builds,
// building it under the cache lock when it is not cached yet.
func ensureOne(ctx context.Context, opts Options, t target) (string, error) {
	path := t.path(opts.CacheDir)
	if isBuilt(path) {
		return path, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockDir(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return "", err
	}
	defer unlock()
	if isBuilt(path) {
		return path, nil
	}
	if err := checkPin(opts.RepoRoot, t); err != nil {
		return "", err
	}
	return path, build(ctx, opts, t)
}

func allBuilt(cacheDir string, ts []target) bool {
	for _, t := range ts {
		if !isBuilt(t.path(cacheDir)) {
			return false
		}
	}
	return true
}

// isBuilt reports whether path is an executable file. Builds only ever
// rename a finished binary into place, so existence means complete.
func isBuilt(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// build runs go build for t, writing to a temporary name and renaming it
// into place only once the build has succeeded.
func build(ctx context.Context, opts Options, t target) error {
	dst := t.path(opts.CacheDir)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// A fixed temporary name is safe because we hold the cache lock, and it
	// lets a later build overwrite what a killed one left behind.
	tmp := dst + ".partial"

	_, _ = fmt.Fprintf(opts.Log, "building %s %s into %s (a first build takes about %s on 2 cores; cached afterwards)\n",
		t.name, t.pinVersion, filepath.Dir(dst), t.coldBuild)
	start := time.Now()

	cmd := exec.CommandContext(ctx, "go", t.buildArgs(tmp)...)
	cmd.Dir = filepath.Join(opts.RepoRoot, t.module)
	// Each tools module stands alone; a go.work above it must not pull in
	// kip's own module and its clashing requirements.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if t.cgo {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// go build runs compilers and the linker as children. Give it its own
	// process group and kill the whole group on cancel so nothing outlives us.
	// A test killed at its timeout cancels nothing, so the kernel stops the
	// build then: left running, it would race the next run's build of the
	// same binary for the cores.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	childproc.DieWithParent(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		if ctx.Err() != nil {
			return fmt.Errorf("building %s: %w", t.name, ctx.Err())
		}
		return fmt.Errorf("building %s in %s failed: %w\n%s", t.name, cmd.Dir, err, out.Bytes())
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(opts.Log, "built %s in %s\n", t.name, time.Since(start).Round(time.Second))
	return nil
}

// buildArgs are go build's arguments for t, writing the binary to out. Any
// other build of these binaries (a Makefile target, CI) should use the same
// flags, so that all of them share one Go build cache.
func (t target) buildArgs(out string) []string {
	args := []string{"build", "-trimpath", "-buildvcs=false"}
	if t.tags != "" {
		args = append(args, "-tags", t.tags)
	}
	if t.ldflags != "" {
		args = append(args, "-ldflags", t.ldflags)
	}
	return append(args, "-o", out, t.pkg)
}

// lockDir takes an exclusive flock on a lock file in dir, polling so that
// ctx can cancel the wait. The lock is released when the process exits, so a
// killed build never leaves it held.
func lockDir(ctx context.Context, dir string, log io.Writer) (unlock func(), err error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Closing the file releases the lock.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !waiting {
			_, _ = fmt.Fprintf(log, "waiting for another process building into %s\n", dir)
			waiting = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
