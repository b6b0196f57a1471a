package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// Write writes report.md, results.json and the plots into dir, and returns
// the report's text.
func Write(dir string, run *results.Run) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return "", err
	}
	plots, err := writePlots(dir, run)
	if err != nil {
		return "", fmt.Errorf("drawing the plots: %w", err)
	}
	md := Markdown(run, plots)
	return md, os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644)
}
