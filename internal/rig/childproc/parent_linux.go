package childproc

import "syscall"

// dieWithParent has the kernel kill the child when the parent dies
// without calling Stop, rather than leave a control plane running.
func dieWithParent(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
