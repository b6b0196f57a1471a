//go:build linux || darwin

package sessions

import "golang.org/x/sys/unix"

// freeBytes is the space left in dir for an unprivileged writer.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true //nolint:gosec,unconvert // both are non-negative; their types differ by platform
}
