package binaries

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// HelmVersion is the Helm library that renders kip's chart; hack/tools/helm
// pins the same one.
const HelmVersion = "v3.22.0"

// helmRenderModule is the tools module of the chart renderer.
const helmRenderModule = "hack/tools/helm"

// helmRender is the chart renderer, hack/tools/helm/render. Its cache
// folder is named after the Helm version and the renderer's own source, so
// that an edit to the renderer builds it afresh.
func helmRender(root string) (target, error) {
	src, err := os.ReadFile(filepath.Join(root, helmRenderModule, "render", "main.go"))
	if err != nil {
		return target{}, err
	}
	sum := sha256.Sum256(src)
	return target{
		name: "render", dir: "helm-render-" + HelmVersion + "-" + hex.EncodeToString(sum[:6]),
		module: helmRenderModule, pkg: "./render",
		pinPath: "helm.sh/helm/v3", pinVersion: HelmVersion,
		coldBuild: "2 to 4 min",
	}, nil
}

// EnsureHelmRender returns the path of the chart renderer, building it when
// it is not cached. Only the chart's tests and `make manifests` need it, so
// Ensure leaves it out.
func EnsureHelmRender(ctx context.Context, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	t, err := helmRender(opts.RepoRoot)
	if err != nil {
		return "", err
	}
	return ensureOne(ctx, opts, t)
}
