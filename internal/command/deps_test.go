package command

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// rigPrefix is the folder of the rig that tests and kip dev share: test
// binaries, a test kubelet, a go build runner. None of it belongs in the
// program that serves production traffic.
const rigPrefix = "github.com/kip-proxy/kip/internal/rig"

// TestServePathImportsNoRig reads the import graph of the commands kip
// serve and the client commands are made of, for each system kip ships
// for, and fails if a rig package creeps in. kip dev lives in a package
// of its own (internal/command/dev) because it does use the rig.
func TestServePathImportsNoRig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list for three systems")
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		t.Run(goos, func(t *testing.T) {
			for _, dep := range deps(t, goos, "github.com/kip-proxy/kip/internal/command") {
				if strings.HasPrefix(dep, rigPrefix) {
					t.Errorf("internal/command imports %s on %s; the rig belongs to tests and kip dev only", dep, goos)
				}
			}
		})
	}
}

// TestDepsSeesTheRig keeps the test above honest: the same reading of
// kip dev's graph does find the rig.
func TestDepsSeesTheRig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, dep := range deps(t, "linux", "github.com/kip-proxy/kip/internal/command/dev") {
		if strings.HasPrefix(dep, rigPrefix) {
			return
		}
	}
	t.Fatal("go list -deps of internal/command/dev lists no rig package; the dependency test reads the graph wrongly")
}

// deps lists pkg and everything it imports, test files left out, as
// built for goos.
func deps(t *testing.T, goos, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s for %s: %v", pkg, goos, err)
	}
	return strings.Fields(string(out))
}
