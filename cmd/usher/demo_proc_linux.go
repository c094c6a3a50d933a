package main

import "syscall"

// demoProcAttr puts an agent in its own process group, so that Ctrl-C in
// the terminal reaches only the demo (which then kills the agents by PID),
// and has the kernel kill the agent should the demo itself die.
func demoProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
