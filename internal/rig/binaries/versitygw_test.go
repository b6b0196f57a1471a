package binaries

import "testing"

// versitygw's cache folder is named after VersityGWVersion, so
// hack/tools/versitygw must pin the same one.
func TestVersityGWPin(t *testing.T) {
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPin(root, versityGW()); err != nil {
		t.Error(err)
	}
}
