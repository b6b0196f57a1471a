package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	notes, err := readNotes(dir)
	if err != nil {
		return "", err
	}
	md := Markdown(run, plots, notes)
	return md, os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644)
}

// NotesFile is the hand-written part of a report, kept beside results.json
// so that --report-only can draw the report again without losing it.
const NotesFile = "notes.md"

func readNotes(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, NotesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return string(data), err
}
