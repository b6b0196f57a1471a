package binaries

import (
	"bufio"
	"bytes"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// modulePath is kip's own module, which marks the root of a checkout.
const modulePath = "github.com/kip-proxy/kip"

// FindRepoRoot walks up from the working directory to the root of the kip
// checkout. Tests run in their package's directory, so this is how they find
// hack/tools and the binary cache.
func FindRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return findRepoRoot(wd)
}

func findRepoRoot(dir string) (string, error) {
	for start := dir; ; {
		// The tools modules under hack/tools have go.mod files too; only
		// kip's own module path marks the root.
		if path, _ := goModModule(filepath.Join(dir, "go.mod")); path == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s in %s or any parent; run from inside a kip checkout", modulePath, start)
		}
		dir = parent
	}
}

// goModModule returns the module path declared in the go.mod at path.
func goModModule(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range goModLines(data) {
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return unquote(strings.TrimSpace(rest)), nil
		}
	}
	return "", fmt.Errorf("%s has no module line", path)
}

// checkPin fails when the tools module for t does not require the version
// the cache folder is named after; building anyway would cache the wrong
// binary under the right name.
func checkPin(root string, t target) error {
	path := filepath.Join(root, t.module, "go.mod")
	version, err := goModRequire(path, t.pinPath)
	if err != nil {
		return err
	}
	if version != t.pinVersion {
		return fmt.Errorf("%s requires %s %s but package binaries expects %s; update one to match the other",
			path, t.pinPath, version, t.pinVersion)
	}
	return nil
}

// goModRequire returns the version of mod that the go.mod at path requires,
// in either the single-line or the block form. A hand-rolled scan is enough
// for the two go.mod files we control.
func goModRequire(path, mod string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	inBlock := false
	for line := range goModLines(data) {
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		}
		fields := strings.Fields(line)
		if !inBlock {
			if len(fields) < 1 || fields[0] != "require" {
				continue
			}
			fields = fields[1:]
		}
		if len(fields) >= 2 && unquote(fields[0]) == mod {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", path, mod)
}

// goModLines yields the trimmed, comment-free, non-empty lines of a go.mod.
func goModLines(data []byte) iter.Seq[string] {
	return func(yield func(string) bool) {
		s := bufio.NewScanner(bytes.NewReader(data))
		for s.Scan() {
			line, _, _ := strings.Cut(s.Text(), "//")
			if line = strings.TrimSpace(line); line != "" && !yield(line) {
				return
			}
		}
	}
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}
