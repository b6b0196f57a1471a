package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestInfo(t *testing.T) {
	withVCS := func(settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Settings: settings}, true }
	}
	noInfo := func() (*debug.BuildInfo, bool) { return nil, false }
	module := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: v}}, true }
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "abc123"}
	tests := []struct {
		name, version, commit string
		buildInfo             func() (*debug.BuildInfo, bool)
		wantVersion           string
		wantCommit            string
	}{
		{"stamped", "v1.2.3", "deadbeef", noInfo, "v1.2.3", "deadbeef"},
		{"stamped wins over the toolchain's record", "v1.2.3", "deadbeef", withVCS(rev), "v1.2.3", "deadbeef"},
		{"go run: nothing known", "", "", noInfo, Unstamped, "unknown"},
		{"go build in a checkout", "", "", withVCS(rev), Unstamped, "abc123"},
		{"go build in a modified checkout", "", "", withVCS(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), Unstamped, "abc123-dirty"},
		{"build info without vcs", "", "", withVCS(), Unstamped, "unknown"},
		{"go install @v1.2.3", "", "", module("v1.2.3"), "v1.2.3", "unknown"},
		{"go install @v1.3.0-rc.1", "", "", module("v1.3.0-rc.1"), "v1.3.0-rc.1", "unknown"},
		{"stamped wins over go install", "v1.2.4", "deadbeef", module("v1.2.3"), "v1.2.4", "deadbeef"},
		{"go build in a checkout: a pseudo-version names no release", "", "", module("v0.0.0-20261205221700-2f11078abcde"), Unstamped, "unknown"},
		{"a pseudo-version after a tag", "", "", module("v1.2.4-0.20261205221700-2f11078abcde"), Unstamped, "unknown"},
		{"a dirty checkout", "", "", module("v1.2.3+dirty"), Unstamped, "unknown"},
		{"go run", "", "", module("(devel)"), Unstamped, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := info(tt.version, tt.commit, tt.buildInfo)
			if got.Version != tt.wantVersion || got.Commit != tt.wantCommit {
				t.Errorf("info() = %q %q, want %q %q", got.Version, got.Commit, tt.wantVersion, tt.wantCommit)
			}
			if got.GoVersion != runtime.Version() || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
				t.Errorf("info() = %+v, want this toolchain and platform", got)
			}
		})
	}
}

// TestLinkerStamp builds a small program with the -X flags that the
// Makefile passes, so a renamed variable cannot leave releases unstamped.
func TestLinkerStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"gitVersion", "gitCommit"} {
		if !strings.Contains(string(makefile), "internal/version."+v+"=") {
			t.Errorf("the Makefile does not stamp internal/version.%s", v)
		}
	}
	bin := filepath.Join(t.TempDir(), "printversion")
	ldflags := "-X github.com/kip-proxy/kip/internal/version.gitVersion=v9.8.7 -X github.com/kip-proxy/kip/internal/version.gitCommit=0123abc"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "./testdata/printversion")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), "v9.8.7 0123abc"; got != want {
		t.Errorf("stamped binary says %q, want %q", got, want)
	}
}
