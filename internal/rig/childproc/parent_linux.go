package childproc

import "syscall"

// DieWithParent has the kernel kill the child when the parent dies
// without calling Stop, rather than leave a control plane running.
func DieWithParent(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
