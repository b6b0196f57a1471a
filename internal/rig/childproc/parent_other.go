//go:build !linux

package childproc

import "syscall"

// DieWithParent does nothing where the kernel cannot kill a child with its
// parent (macOS, the BSDs): a child outlives a parent killed before Stop.
// The rig runs on Linux in CI; elsewhere it still builds and vets.
func DieWithParent(*syscall.SysProcAttr) {}
