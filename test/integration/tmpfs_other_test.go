//go:build !linux

package integration

import "testing"

// smallTmpfs skips t: a small tmpfs to fill is mounted on Linux only.
func smallTmpfs(t *testing.T) string {
	t.Skip("a full recording directory is tested on Linux, with a small tmpfs")
	return ""
}
