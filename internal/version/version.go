// Package version reports which kip this is: the version and commit that
// the build stamped into the binary, and the Go toolchain that built it.
package version

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
)

// Stamped by the build, e.g. `make build`:
//
//	go build -ldflags "-X github.com/kip-proxy/kip/internal/version.gitVersion=v1.2.3 \
//	  -X github.com/kip-proxy/kip/internal/version.gitCommit=$(git rev-parse HEAD)"
//
// They are variables only because the linker can set nothing else.
var (
	gitVersion string
	gitCommit  string
)

// Unstamped is the version of a binary built without -ldflags, such as
// `go run`: it says honestly that nobody named this build.
const Unstamped = "v0.0.0-dev"

// Info is what `kip version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns this binary's version.
func Get() Info {
	return info(gitVersion, gitCommit, debug.ReadBuildInfo)
}

// info falls back, for an unstamped binary, to the module version that
// `go install github.com/kip-proxy/kip/cmd/kip@v1.2.3` records, and to the
// commit that the Go toolchain records when it builds inside a git
// checkout.
func info(version, commit string, buildInfo func() (*debug.BuildInfo, bool)) Info {
	if version == "" {
		version = moduleVersion(buildInfo)
	}
	if commit == "" {
		commit = vcsCommit(buildInfo)
	}
	return Info{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH),
	}
}

// releaseVersion is a tagged version such as v1.2.3 or v1.3.0-rc.1; a
// pseudo-version (v0.0.0-20261205221700-2f11078abcde) or a "+dirty" build
// of a checkout names no release.
var (
	releaseVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	pseudoVersion  = regexp.MustCompile(`[0-9]{14}-[0-9a-f]{12}$`)
)

// moduleVersion is the release that go install built, else Unstamped.
func moduleVersion(buildInfo func() (*debug.BuildInfo, bool)) string {
	bi, ok := buildInfo()
	if !ok || !releaseVersion.MatchString(bi.Main.Version) || pseudoVersion.MatchString(bi.Main.Version) {
		return Unstamped
	}
	return bi.Main.Version
}

func vcsCommit(buildInfo func() (*debug.BuildInfo, bool)) string {
	bi, ok := buildInfo()
	if !ok {
		return "unknown"
	}
	var revision, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	switch {
	case revision == "":
		return "unknown"
	case modified == "true":
		return revision + "-dirty"
	default:
		return revision
	}
}
