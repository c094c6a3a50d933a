package farm

import (
	"os"
	"os/exec"
	"runtime"
)

// Proc is an agent child process, its output in a log file of its own.
type Proc struct {
	LogPath string
	Cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // how it ended; read after exited is closed
}

// Start runs exe with args, env added to this process's environment, as
// StartCmd does.
func (p *Proc) Start(exe, logPath string, args, env []string) error {
	cmd := exec.Command(exe, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	return p.StartCmd(cmd, logPath)
}

// StartCmd starts cmd, built by the caller, its stdout and stderr going to
// a new file at logPath, and reaps it in a goroutine that closes the
// channel Exited returns. Unless cmd has SysProcAttr set, the process runs
// in a process group of its own and, on Linux, is killed should this
// process die.
//
// The fork happens on a goroutine locked to its OS thread until the child
// is reaped: the parent-death signal fires when the thread that forked the
// child exits, and a locked thread is never handed to another goroutine
// (one of which could end while locked and take the thread down).
func (p *Proc) StartCmd(cmd *exec.Cmd, logPath string) error {
	p.LogPath = logPath
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = procAttr()
	}
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		logf.Close() // the child holds its own copy
		started <- err
		if err != nil {
			return
		}
		p.waitErr = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return err
	}
	p.Cmd, p.exited = cmd, exited
	return nil
}

// Started reports whether the process was started.
func (p *Proc) Started() bool { return p.Cmd != nil }

// Exited returns a channel closed once the process has ended and been
// reaped; nil (blocking forever) before it started.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// HasExited reports whether the process was started and has ended.
func (p *Proc) HasExited() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// WaitErr is how the process ended; valid once Exited is closed.
func (p *Proc) WaitErr() error { return p.waitErr }
