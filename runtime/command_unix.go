//go:build unix

package runtime

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, and makes
// cancelling it kill the whole group, so that a script's children cannot
// keep the attempt alive.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// killLeftovers kills what is left of cmd's process group once cmd has
// exited: children it started in the background. (The group's number is
// not given to a new process while any of them lives.)
func killLeftovers(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
