package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citedTest is how docs/security.md names a test or fuzzer: in backticks.
var citedTest = regexp.MustCompile("`((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)`")

// citedFile is how it names a test file: a path in backticks.
var citedFile = regexp.MustCompile("`((?:internal|test|bench|cmd|hack)/[A-Za-z0-9_/.-]+_test\\.go)`")

// TestSecurityDocNamesRealTests fails when docs/security.md cites a test
// that no longer exists, say after a rename, so the document's promise that
// each rule is proved by the tests it lists stays checkable.
func TestSecurityDocNamesRealTests(t *testing.T) {
	doc := readDoc(t)
	defined := definedTests(t, "..")
	cited := citedTest.FindAllStringSubmatch(doc, -1)
	if len(cited) < 50 {
		t.Fatalf("found only %d cited tests in security.md; the pattern no longer matches how it names them", len(cited))
	}
	for _, m := range cited {
		if !defined[m[1]] {
			t.Errorf("security.md cites %s, which no _test.go file defines", m[1])
		}
	}
}

// TestSecurityDocNamesRealFiles does the same for the test files the rule
// table names.
func TestSecurityDocNamesRealFiles(t *testing.T) {
	cited := citedFile.FindAllStringSubmatch(readDoc(t), -1)
	if len(cited) == 0 {
		t.Fatal("security.md names no test file; the pattern no longer matches")
	}
	for _, m := range cited {
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("security.md names %s: %v", m[1], err)
		}
	}
}

func readDoc(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("security.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// definedTests lists the Test and Fuzz functions of every _test.go file
// below root, leaving out the cache of built tools.
func definedTests(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".cache" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil {
				names[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
