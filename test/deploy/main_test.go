package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// env is shared by the package's tests. Each part starts on first use, so
// the tests that need no control plane never wait for one.
var env struct {
	root string
	dir  string

	clusterOnce sync.Once
	cluster     *localcluster.Cluster
	bins        binaries.Paths
	clusterErr  error

	renderOnce sync.Once
	render     string
	renderErr  error

	kipOnce sync.Once
	kip     string
	kipErr  error
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := binaries.FindRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.root = root
	if env.dir, err = os.MkdirTemp("", "kip-deploy-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if env.cluster != nil {
		if err := env.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}
	if os.Getenv("KIP_KEEP_TEST_DIR") == "" {
		_ = os.RemoveAll(env.dir)
	} else {
		fmt.Fprintf(os.Stderr, "test files are in %s\n", env.dir)
	}
	return code
}

// cluster returns the package's control plane, starting it on first use.
func cluster(t *testing.T) *localcluster.Cluster {
	t.Helper()
	env.clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		env.bins, env.clusterErr = binaries.Ensure(ctx, binaries.Options{RepoRoot: env.root, Log: os.Stderr})
		if env.clusterErr != nil {
			return
		}
		env.cluster, env.clusterErr = localcluster.Start(ctx, localcluster.Options{
			Binaries: env.bins, Log: os.Stderr, KeepDir: os.Getenv("KIP_KEEP_TEST_DIR") != "",
		})
	})
	if env.clusterErr != nil {
		t.Fatalf("starting the control plane: %v", env.clusterErr)
	}
	return env.cluster
}

// renderer returns the chart renderer (hack/tools/helm), building it once.
func renderer(t *testing.T) string {
	t.Helper()
	env.renderOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		env.render, env.renderErr = binaries.EnsureHelmRender(ctx, binaries.Options{RepoRoot: env.root, Log: os.Stderr})
	})
	if env.renderErr != nil {
		t.Fatalf("building the chart renderer: %v", env.renderErr)
	}
	return env.render
}

// kipBinary returns kip built by the Dockerfile's own build command, the
// binary the image ships.
func kipBinary(t *testing.T) string {
	t.Helper()
	env.kipOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		env.kip, env.kipErr = buildLikeDockerfile(ctx, filepath.Join(env.dir, "image"))
	})
	if env.kipErr != nil {
		t.Fatalf("building kip as the Dockerfile does: %v", env.kipErr)
	}
	return env.kip
}
