package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/version"
)

const (
	testVersion = "v0.0.0-test.1"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// TestMakeRelease runs `make release` as a maintainer does and checks what
// a user gets: six archives holding kip, the licence and the README; a
// linux/amd64 kip that says its version; checksums that match; an SBOM per
// archive; and a krew manifest with which the real krew installs kip from
// a custom index, after which the real kubectl runs `kubectl kip`.
func TestMakeRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kip for six platforms")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := binaries.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(t.TempDir(), "dist")
	cmd := exec.CommandContext(ctx, "make", "-s", "release", "VERSION="+testVersion, "COMMIT="+testCommit, "RELEASE_DIR="+dist)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1764979200")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}

	sums, err := readChecksums(filepath.Join(dist, checksumsName(testVersion)))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for name, sum := range sums {
		listed = append(listed, name)
		if got, err := sha256File(filepath.Join(dist, name)); err != nil || got != sum {
			t.Errorf("%s: SHA-256 %s (%v), the checksums say %s", name, got, err, sum)
		}
	}
	var want []string
	for _, p := range platforms {
		a := archiveName(testVersion, p)
		want = append(want, a, sbomName(a))
		checkArchive(t, filepath.Join(dist, a), p)
		checkSBOM(t, filepath.Join(dist, sbomName(a)))
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("the checksums list %q, want %q", listed, want)
	}
	checkVersion(t, filepath.Join(dist, archiveName(testVersion, platform{"linux", "amd64"})))
	checkKrewManifest(t, filepath.Join(dist, "kip.yaml"), sums)
	t.Run("krew installs kubectl kip from a custom index", func(t *testing.T) {
		krewInstall(t, ctx, dist)
	})
}

// readArchive returns each member's mode and content.
func readArchive(t *testing.T, path string) map[string]archived {
	t.Helper()
	got := map[string]archived{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = zr.Close() }()
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			_ = rc.Close()
			got[f.Name] = archived{mode: f.Mode().Perm(), data: b}
		}
		return got
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[hdr.Name] = archived{mode: os.FileMode(hdr.Mode).Perm(), data: b}
	}
}

type archived struct {
	mode os.FileMode
	data []byte
}

// checkArchive: the binary for p (an executable of that system, by its
// magic bytes), the licence and the README, and nothing else.
func checkArchive(t *testing.T, path string, p platform) {
	t.Helper()
	got := readArchive(t, path)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range got {
			if !yield(n) {
				return
			}
		}
	})
	if want := slices.Sorted(slices.Values([]string{p.binary(), "LICENSE", "README.md"})); !slices.Equal(names, want) {
		t.Errorf("%s holds %q, want %q", filepath.Base(path), names, want)
	}
	bin := got[p.binary()]
	if bin.mode != 0o755 {
		t.Errorf("%s: %s has mode %04o, want 0755", filepath.Base(path), p.binary(), bin.mode)
	}
	magic := map[string]string{"linux": "\x7fELF", "darwin": "\xcf\xfa\xed\xfe", "windows": "MZ"}[p.OS]
	if !strings.HasPrefix(string(bin.data), magic) {
		t.Errorf("%s: %s is not a %s executable", filepath.Base(path), p.binary(), p.OS)
	}
	if !strings.Contains(string(got["LICENSE"].data), "Apache License") {
		t.Errorf("%s: LICENSE is not kip's licence", filepath.Base(path))
	}
}

// checkVersion runs the linux/amd64 kip of the archive.
func checkVersion(t *testing.T, archive string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kip")
	if err := os.WriteFile(bin, readArchive(t, archive)["kip"].data, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kip version: %v", err)
	}
	var v version.Info
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != testVersion || v.Commit != testCommit || v.Platform != "linux/amd64" {
		t.Errorf("kip version = %+v, want %s, commit %s, linux/amd64", v, testVersion, testCommit)
	}
}

// checkSBOM: a CycloneDX document about kip at this version that lists
// the modules linked into it.
func checkSBOM(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name, Version string }
		}
		Components []struct{ Name, Version string }
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Name != "github.com/kip-proxy/kip" || bom.Metadata.Component.Version != testVersion {
		t.Errorf("%s: format %q about %q %q, want CycloneDX about github.com/kip-proxy/kip %s", filepath.Base(path),
			bom.BOMFormat, bom.Metadata.Component.Name, bom.Metadata.Component.Version, testVersion)
	}
	if !slices.ContainsFunc(bom.Components, func(c struct{ Name, Version string }) bool {
		return c.Name == "k8s.io/apiserver" && c.Version != ""
	}) {
		t.Errorf("%s does not list k8s.io/apiserver among %d components", filepath.Base(path), len(bom.Components))
	}
}

// checkKrewManifest: one platform per archive, with its SHA-256.
func checkKrewManifest(t *testing.T, path string, sums map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m krewPlugin
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Name != "kip" || m.Spec.Version != testVersion || len(m.Spec.Platforms) != len(platforms) {
		t.Fatalf("manifest %s %s with %d platforms", m.Metadata.Name, m.Spec.Version, len(m.Spec.Platforms))
	}
	for _, p := range m.Spec.Platforms {
		archive := filepath.Base(p.URI)
		if p.SHA256 != sums[archive] || !strings.HasPrefix(p.URI, homepage+"/releases/download/"+testVersion+"/") {
			t.Errorf("%v: %s %s, want %s from the release's download URL", p.Selector.MatchLabels, p.URI, p.SHA256, sums[archive])
		}
	}
}

// krewInstall serves the release on loopback, publishes a manifest for it
// in a custom index (a git repository, as users add one), and installs it
// with krew run as kubectl's plugin; then kubectl finds kip as `kubectl
// kip` through the link krew made.
func krewInstall(t *testing.T, ctx context.Context, dist string) {
	bins, err := binaries.Ensure(ctx, binaries.Options{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	krew, err := binaries.EnsureKrew(ctx, binaries.Options{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer srv.Close()

	dir := t.TempDir()
	index := filepath.Join(dir, "index")
	if err := os.MkdirAll(filepath.Join(index, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifest, err := os.Create(filepath.Join(index, "plugins", "kip.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"krew", "--checksums", filepath.Join(dist, checksumsName(testVersion)), "--download-url", srv.URL}, manifest, io.Discard)
	_ = manifest.Close()
	if err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-c", "user.name=kip", "-c", "user.email=kip@example.com"}, args...)...)
		cmd.Dir = index
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "master")
	git("add", ".")
	git("commit", "-q", "-m", "kip")

	krewRoot := filepath.Join(dir, "krew")
	path := strings.Join([]string{filepath.Join(krewRoot, "bin"), filepath.Dir(krew), filepath.Dir(bins.Kubectl), os.Getenv("PATH")}, string(os.PathListSeparator))
	env := append(os.Environ(), "KREW_ROOT="+krewRoot, "PATH="+path)
	kubectl := func(args ...string) string {
		cmd := exec.CommandContext(ctx, bins.Kubectl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	kubectl("krew", "index", "add", "kiptest", index)
	kubectl("krew", "install", "kiptest/kip")
	out := kubectl("kip", "version", "-o", "json")
	var v version.Info
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version != testVersion {
		t.Fatalf("kubectl kip version = %s (%v), want %s", out, err, testVersion)
	}
	if help := kubectl("kip", "login", "--help"); !strings.Contains(help, "kubectl kip login") {
		t.Errorf("kubectl kip login --help does not say kubectl kip login:\n%s", help)
	}
}

// testLog passes a build's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
