package dev

import (
	"strings"
	"testing"
)

// TestDevNeedsLinux is the message kip dev gives on macOS and Windows: it
// names the system and says where kip dev runs instead.
func TestDevNeedsLinux(t *testing.T) {
	for _, tc := range []struct{ goos, goarch string }{{"darwin", "arm64"}, {"windows", "amd64"}} {
		msg := devNeedsLinux(tc.goos, tc.goarch).Error()
		for _, want := range []string{"needs Linux", tc.goos + "/" + tc.goarch, "make dev", "kip login"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s/%s: %q does not say %q", tc.goos, tc.goarch, msg, want)
			}
		}
	}
}
