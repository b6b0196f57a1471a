package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportOnlyReadsOldResults redraws the reference run, whose
// results.json predates fields added since, such as the credential
// exchange's.
func TestReportOnlyReadsOldResults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("results", "2026-11-27", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"--report-only", "--out=" + dir}, &stdout, testLog{t}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| credential exchange p50 | ≤ 5 ms | not yet implemented | n/a |",
		"| kip CPU per exchange | no goal yet | not yet implemented | n/a |",
		"## 6. Credential exchange (TokenCredentialRequest)\n\nNo numbers: not yet implemented",
		"| kip | 4000 | 318 |",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
