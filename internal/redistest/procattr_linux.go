package redistest

import "syscall"

// dieWithParent has the kernel kill a test's redis-server when the test
// binary dies, even by a signal that skips Stop.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
