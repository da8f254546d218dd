//go:build unix

package runtime

import (
	"os/exec"
	"syscall"
)

// killGroup makes cancelling cmd kill its whole process group, so that a
// script's children cannot keep the attempt alive.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
