package binaries

import (
	"strings"
	"testing"
)

// The renderer's cache folder is named after HelmVersion, so
// hack/tools/helm must pin the same one.
func TestHelmRenderPin(t *testing.T) {
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := helmRender(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPin(root, tgt); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(tgt.dir, "helm-render-"+HelmVersion+"-") {
		t.Errorf("cache folder %s is not named after Helm %s and the renderer's source", tgt.dir, HelmVersion)
	}
}
