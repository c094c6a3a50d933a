package main

import (
	"net/netip"
	"os"
	"os/exec"
	"strconv"
)

// agentProc is an agent child process of the demo or the scale benchmark,
// its output in a log file of its own.
type agentProc struct {
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // how it ended; read after exited is closed
}

// start runs exe with args, env added to this process's environment, its
// stdout and stderr going to a new file at logPath, and reaps it in a
// goroutine that closes exited.
func (p *agentProc) start(exe, logPath string, args, env []string) error {
	p.logPath = logPath
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = demoProcAttr()
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// agentAddrs names a local agent and the loopback addresses it serves.
type agentAddrs struct {
	name    string
	gossip  netip.AddrPort // memberlist; Raft uses the next port
	session netip.AddrPort
	http    netip.AddrPort
}

// agentArgs returns the command line of agent a with profile fast in vip
// mode bind at vip, its data under dataDir, bootstrapping with expect
// voters and joining seeds (a itself left out); more follows it.
func agentArgs(a agentAddrs, vip netip.AddrPort, expect int, dataDir string, seeds []agentAddrs, more ...string) []string {
	args := []string{"agent",
		"-node", a.name,
		"-bind", a.gossip.String(),
		"-session-addr", a.session.String(),
		"-http", a.http.String(),
		"-vip", vip.String(),
		"-vip-mode", "bind",
		"-bootstrap-expect", strconv.Itoa(expect),
		"-data-dir", dataDir,
		"-profile", "fast",
		"-log-level", "info",
	}
	for _, s := range seeds {
		if s.name != a.name {
			args = append(args, "-join", s.gossip.String())
		}
	}
	return append(args, more...)
}
