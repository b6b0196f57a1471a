package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// checksumsName is the release's checksums file.
func checksumsName(version string) string { return "kip_" + version + "_checksums.txt" }

// sha256File is the hex SHA-256 of a file's content.
func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeChecksums writes the files of dir named in names in the format of
// sha256sum, which `sha256sum -c` checks: "<hex>  <name>", sorted by name.
func writeChecksums(path, dir string, names []string) error {
	var b strings.Builder
	for _, name := range slices.Sorted(slices.Values(names)) {
		sum, err := sha256File(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

var checksumLine = regexp.MustCompile(`^([0-9a-f]{64})  ([A-Za-z0-9._-]+)$`)

// readChecksums parses a checksums file into name → hex SHA-256, refusing
// anything that writeChecksums would not have written.
func readChecksums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		m := checksumLine.FindStringSubmatch(s.Text())
		if m == nil {
			return nil, fmt.Errorf("%s:%d is not a line of sha256sum: %q", path, n, s.Text())
		}
		if _, dup := sums[m[2]]; dup {
			return nil, fmt.Errorf("%s:%d names %s twice", path, n, m[2])
		}
		sums[m[2]] = m[1]
	}
	return sums, s.Err()
}
