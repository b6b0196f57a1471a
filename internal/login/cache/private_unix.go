//go:build unix

package cache

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ownerCheck is where the cache and its entries must belong to kip's user.
func ownerCheck(_ string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("its owner cannot be read")
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("owned by another user (uid %d)", st.Uid)
	}
	return nil
}

// privacyCheck refuses a file or directory that the group or others may
// open in any way.
func privacyCheck(_ string, fi os.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("open to other users (mode %04o)", perm)
	}
	return nil
}

// makePrivate gives path to its owner alone, under any umask.
func makePrivate(path string, dir bool) error {
	mode := os.FileMode(0o600)
	if dir {
		mode = 0o700
	}
	return os.Chmod(path, mode)
}
