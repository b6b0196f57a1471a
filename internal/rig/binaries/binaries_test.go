package binaries

import (
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFindRepoRoot(t *testing.T) {
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "hack", "tools", "kube", "go.mod")); err != nil {
		t.Errorf("FindRepoRoot() = %s, which has no hack/tools/kube: %v", root, err)
	}
}

func TestFindRepoRootSkipsOtherModules(t *testing.T) {
	root := t.TempDir()
	nested := filepath.Join(root, "hack", "tools", "kube")
	writeFile(t, filepath.Join(root, "go.mod"), "module "+modulePath+"\n\ngo 1.26\n", 0o644)
	writeFile(t, filepath.Join(nested, "go.mod"), "module "+modulePath+"/hack/tools/kube\n", 0o644)

	tests := []struct {
		name    string
		start   string
		want    string
		wantErr bool
	}{
		{name: "at the root", start: root, want: root},
		{name: "inside a tools module", start: nested, want: root},
		{name: "outside any checkout", start: t.TempDir(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findRepoRoot(tt.start)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("findRepoRoot(%s) = %s, want error", tt.start, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("findRepoRoot(%s) = %q, %v; want %q", tt.start, got, err, tt.want)
			}
		})
	}
}

// The cache folders are named after the constants, so the tools modules
// must pin the same versions.
func TestVersionsMatchToolsModules(t *testing.T) {
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tgt := range targets().all() {
		if err := checkPin(root, tgt); err != nil {
			t.Error(err)
		}
	}
}

func TestGoModRequire(t *testing.T) {
	tests := []struct {
		name    string
		gomod   string
		want    string
		wantErr bool
	}{
		{name: "block", gomod: "module x\n\nrequire (\n\ta v1.0.0\n\tk8s.io/kubernetes v1.37.2 // pinned\n)\n", want: "v1.37.2"},
		{name: "single line", gomod: "module x\nrequire k8s.io/kubernetes v1.37.2\n", want: "v1.37.2"},
		{name: "quoted path", gomod: "module x\nrequire \"k8s.io/kubernetes\" v1.37.2\n", want: "v1.37.2"},
		{name: "commented out", gomod: "module x\n// require k8s.io/kubernetes v1.0.0\n", wantErr: true},
		{name: "only a longer path", gomod: "module x\nrequire k8s.io/kubernetes/sub v1.0.0\n", wantErr: true},
		{name: "replace is not require", gomod: "module x\nreplace k8s.io/kubernetes v1.37.2 => ./k\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "go.mod")
			writeFile(t, path, tt.gomod, 0o644)
			got, err := goModRequire(path, "k8s.io/kubernetes")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %q, want error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestKubeLDFlags(t *testing.T) {
	// Spelled out in full: a change here changes the binaries' /version.
	want := "-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 " +
		"-X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean " +
		"-X k8s.io/component-base/version.buildDate=2026-11-01T00:00:00Z"
	if got := kubeLDFlags(); got != want {
		t.Errorf("kubeLDFlags() =\n%s\nwant\n%s", got, want)
	}
}

func TestBuildArgs(t *testing.T) {
	tools := targets()
	tests := []struct {
		name string
		tgt  target
		want []string
	}{
		{
			name: "etcd has neither tags nor ldflags",
			tgt:  tools.etcd,
			want: []string{"build", "-trimpath", "-buildvcs=false", "-o", "/out", "."},
		},
		{
			name: "kube-apiserver carries its version",
			tgt:  tools.apiServer,
			want: []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", kubeLDFlags(), "-o", "/out", "k8s.io/kubernetes/cmd/kube-apiserver"},
		},
		{
			// Without the sqlite tag Hydra cannot open its in-memory database.
			name: "hydra needs sqlite",
			tgt:  tools.hydra,
			want: []string{
				"build", "-trimpath", "-buildvcs=false", "-tags", "sqlite,sqlite_omit_load_extension",
				"-ldflags", "-X github.com/ory/hydra/v2/driver/config.Version=" + HydraVersion,
				"-o", "/out", "github.com/ory/hydra/v2",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tgt.buildArgs("/out"); !slices.Equal(got, tt.want) {
				t.Errorf("buildArgs() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if !tools.hydra.cgo {
		t.Error("hydra is built without forcing cgo, so a machine without it gets a binary whose SQLite is a stub")
	}
}

func TestEnsureUsesCache(t *testing.T) {
	tools := targets()
	all := map[string]bool{}
	for _, tgt := range tools.all() {
		all[tgt.name] = true
	}
	tests := []struct {
		name       string
		executable map[string]bool // binary name → exec bit; absent means no file
		wantErr    bool
	}{
		{
			name:       "all cached",
			executable: all,
		},
		{
			// A file without the exec bit is not a finished build, so Ensure
			// tries to build, which fails in a root without tools modules.
			name:       "not executable",
			executable: with(all, tools.etcd.name, false),
			wantErr:    true,
		},
		{
			name:       "hydra missing",
			executable: without(all, tools.hydra.name),
			wantErr:    true,
		},
		{
			name:       "etcd missing",
			executable: without(all, tools.etcd.name),
			wantErr:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			for _, tgt := range tools.all() {
				if x, ok := tt.executable[tgt.name]; ok {
					mode := os.FileMode(0o644)
					if x {
						mode = 0o755
					}
					writeFile(t, tgt.path(cache), "#!/bin/true\n", mode)
				}
			}
			got, err := Ensure(t.Context(), Options{RepoRoot: t.TempDir(), CacheDir: cache})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Ensure succeeded with %v, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Paths{
				Etcd:          filepath.Join(cache, "etcd-"+EtcdVersion, "etcd"),
				KubeAPIServer: filepath.Join(cache, "kube-"+KubeVersion, "kube-apiserver"),
				Kubectl:       filepath.Join(cache, "kube-"+KubeVersion, "kubectl"),
				Hydra:         filepath.Join(cache, "hydra-"+HydraVersion, "hydra"),
			}
			if got != want {
				t.Errorf("Ensure() = %+v, want %+v", got, want)
			}
		})
	}
}

// with returns a copy of m with key set to v.
func with(m map[string]bool, key string, v bool) map[string]bool {
	c := maps.Clone(m)
	c[key] = v
	return c
}

// without returns a copy of m without key.
func without(m map[string]bool, key string) map[string]bool {
	c := maps.Clone(m)
	delete(c, key)
	return c
}

func TestLockDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(t.Context(), dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	var log strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := lockDir(ctx, dir, &log); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: got %v, want a deadline error while the first is held", err)
	}
	if !strings.Contains(log.String(), "waiting") {
		t.Errorf("log %q does not say it is waiting", log.String())
	}

	unlock()
	unlock2, err := lockDir(t.Context(), dir, io.Discard)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
