package farm

import "syscall"

// procAttr puts an agent in its own process group, so that Ctrl-C in
// the terminal reaches only the launcher (which then kills the agents by PID),
// and has the kernel kill the agent should the launcher itself die.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
