package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerfileBuildsAsTheRelease: the container image's kip is built
// with the release's own flags, so that `kip version` and the binary agree
// whichever way a user got kip.
func TestDockerfileBuildsAsTheRelease(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var build string
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			build = line
		}
	}
	vars := strings.NewReplacer("${VERSION_PKG}", versionPkg, "${VERSION}", "V", "${COMMIT}", "C")
	flags := goBuildFlags("V", "C")
	want := "go build " + flags[0] + " " + flags[1] + " " + flags[2] + ` "` + flags[3] + `" -o /out/kip ./cmd/kip`
	if !strings.Contains(vars.Replace(build), want) {
		t.Errorf("the Dockerfile builds kip with\n%s\nwant the release's\n%s", strings.TrimSpace(build), want)
	}
	if !strings.Contains(build, "CGO_ENABLED=0") {
		t.Error("the Dockerfile's build is not static (CGO_ENABLED=0)")
	}
}

func TestArchivesAreReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kip")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	members := []member{{name: "kip", path: bin, mode: 0o755}}
	when := time.Unix(1764979200, 0)
	for _, name := range []string{"a.tar.gz", "a.zip"} {
		first, second := filepath.Join(dir, "1-"+name), filepath.Join(dir, "2-"+name)
		if err := writeArchive(first, members, when); err != nil {
			t.Fatal(err)
		}
		// A later build, with another file time, writes the same bytes.
		if err := os.Chtimes(bin, time.Now(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := writeArchive(second, members, when); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(first)
		b, _ := os.ReadFile(second)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two archives of the same files differ", name)
		}
	}
}

func TestReadChecksums(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name, content, wantErr string
	}{
		{name: "sha256sum's format", content: sum + "  kip_v1.2.3_linux_amd64.tar.gz\n" + sum + "  kip_v1.2.3_windows_arm64.zip\n"},
		{name: "one space", content: sum + " kip.tar.gz\n", wantErr: "not a line of sha256sum"},
		{name: "a short sum", content: sum[:62] + "  kip.tar.gz\n", wantErr: "not a line of sha256sum"},
		{name: "upper-case hex", content: strings.ToUpper(sum) + "  kip.tar.gz\n", wantErr: "not a line of sha256sum"},
		{name: "a path, not a name", content: sum + "  ../kip.tar.gz\n", wantErr: "not a line of sha256sum"},
		{name: "a name twice", content: sum + "  kip.tar.gz\n" + sum + "  kip.tar.gz\n", wantErr: "names kip.tar.gz twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sums")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := readChecksums(path)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("readChecksums = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestKrewManifestNeedsEveryArchive: a manifest from the checksums of
// another release, or of an incomplete one, is refused rather than
// written with a platform missing.
func TestKrewManifestNeedsEveryArchive(t *testing.T) {
	sums := map[string]string{}
	for _, p := range platforms[1:] {
		sums[archiveName("v1.2.3", p)] = strings.Repeat("0", 64)
	}
	if _, err := krewManifest("v1.2.3", "https://example.com", sums); err == nil || !strings.Contains(err.Error(), "kip_v1.2.3_linux_amd64.tar.gz") {
		t.Errorf("krewManifest = %v, want the missing linux/amd64 archive named", err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--version=v1.2.3", "--commit=c", "--source-date-epoch=0"}},
		{args: []string{"--version=v1.3.0-rc.1", "--commit=c", "--source-date-epoch=0"}},
		{args: []string{"--commit=c", "--source-date-epoch=0"}, wantErr: `--version "" is not a release version`},
		{args: []string{"--version=b988ebb-dirty", "--commit=c", "--source-date-epoch=0"}, wantErr: "is not a release version"},
		{args: []string{"--version=1.2.3", "--commit=c", "--source-date-epoch=0"}, wantErr: "is not a release version"},
		{args: []string{"--version=v1.2.3", "--commit=c", "--source-date-epoch=yesterday"}, wantErr: "is not a Unix time"},
		{args: []string{"--version=v1.2.3", "extra"}, wantErr: "unexpected arguments"},
	} {
		_, err := parseOptions(tc.args)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.wantErr)
		}
	}
}
