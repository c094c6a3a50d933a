//go:build unix

package health

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a new process group and makes the end of
// its context kill the whole group, so a shell's children die with it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
