//go:build !linux

package dev

import (
	"strings"
	"testing"
)

// TestDevSaysItNeedsLinux: on macOS and Windows, kip dev with any flags
// answers with the reason instead of an unknown command or flag.
func TestDevSaysItNeedsLinux(t *testing.T) {
	root := New()
	root.SetArgs([]string{"--skip-browser"})
	root.SetOut(&strings.Builder{})
	root.SetErr(&strings.Builder{})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "kip dev needs Linux") {
		t.Fatalf("kip dev = %v, want the Linux-only message", err)
	}
}
