//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/farm"
)

// TermTimeout is how long Term waits for a process to exit after SIGTERM
// before it resorts to SIGKILL.
const TermTimeout = 5 * time.Second

// LogDirEnv names an environment variable: when set, Start writes process
// logs under that directory instead of t.TempDir(), so they survive the run
// (for CI artifacts).
const LogDirEnv = "USHER_E2E_LOGDIR"

// logTailLines is how much of a process's log a failed test prints.
const logTailLines = 40

// procSeq numbers started processes, to keep log file names unique.
var procSeq atomic.Int64

// Proc is a process started on a host by Start. Its standard output and
// standard error go, interleaved, to one log file. It runs in a process
// group of its own, which it leads, and every signal method signals that
// group, so helpers it forks share its fate; the group id is its PID.
// internal/farm's Proc starts it and tracks its exit.
type Proc struct {
	// Name is the program name given to Start.
	Name string
	// Host is the host the process runs on.
	Host *Host

	fp  farm.Proc
	pid int
	set *procSet
}

// Start runs name with args on h, like Command, logging to a file under
// t.TempDir() (or under $USHER_E2E_LOGDIR when set). It registers a cleanup
// that SIGKILLs the process if it is still running and, when the test
// failed, prints the end of its log. Failing to start is fatal.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	dir := os.Getenv(LogDirEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	return h.StartIn(t, dir, name, args...)
}

// unsafeChars are replaced in log file names.
var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// StartIn is Start with the log file placed in dir, which it creates if
// needed.
func (h *Host) StartIn(t testing.TB, dir string, name string, args ...string) *Proc {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("e2e: log directory: %v", err)
	}
	p, err := h.start(dir, name, args...)
	if err != nil {
		t.Fatalf("e2e: start %s on %s: %v", name, h.Name, err)
	}
	t.Cleanup(func() {
		_ = p.Kill()
		if t.Failed() {
			t.Logf("e2e: %s on %s (pid %d), last lines of %s:\n%s",
				p.Name, h.Name, p.pid, p.LogPath(), tail(p.Log(), logTailLines))
		}
	})
	return p
}

// start launches the process with farm.Proc.StartCmd, which forks on a
// thread locked for the life of the process (for the parent-death
// signal), and adds it to its host's process set until it is reaped.
func (h *Host) start(dir, name string, args ...string) (*Proc, error) {
	// Resolve the program here so a missing one fails Start the same way
	// in a namespace (where ip would only report it after the fact) as on
	// a loop host.
	if _, err := exec.LookPath(name); err != nil {
		return nil, err
	}
	seq := procSeq.Add(1)
	// The test process's PID keeps names unique in a shared $USHER_E2E_LOGDIR.
	base := fmt.Sprintf("%s-%s-%d-%d.log", h.Name, filepath.Base(name), os.Getpid(), seq)
	logPath := filepath.Join(dir, unsafeChars.ReplaceAllString(base, "_"))
	cmd := h.Command(context.Background(), name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: name, Host: h, set: h.procs}
	if p.set == nil {
		p.set = looseProcs
	}
	if err := p.fp.StartCmd(cmd, logPath); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.set.add(p)
	go func() {
		<-p.fp.Exited()
		p.set.remove(p)
	}()
	if h.NS != "" {
		if err := p.awaitExec(cmd.Args); err != nil {
			_ = p.Kill()
			return nil, err
		}
	}
	return p, nil
}

// enterTimeout bounds how long start waits for `ip netns exec` to switch
// namespaces and exec the program.
const enterTimeout = 5 * time.Second

// awaitExec waits until `ip netns exec` has entered the namespace and
// replaced itself with the program, so that Start returns only once the
// program runs where it should. Until then /proc/<pid>/cmdline reads as the
// ip command line in args, and the command name (comm, which execve sets a
// moment after the new command line appears) is still ip's.
func (p *Proc) awaitExec(args []string) error {
	before := strings.Join(args, "\x00") + "\x00"
	ipComm := filepath.Base(args[0])
	checkComm := filepath.Base(p.Name) != ipComm
	deadline := time.Now().Add(enterTimeout)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
		if err == nil && string(b) != before && (!checkComm || procComm(p.pid) != ipComm) {
			return nil
		}
		select {
		case <-p.Done():
			// It ran and ended, or ip failed; either way the caller
			// sees it in Exited and Log.
			return nil
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: %s did not start within %v", p.Name, enterTimeout)
		}
	}
}

// procComm returns the command name of pid, or "" if it cannot be read.
func procComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// PID returns the process id, which is also its process group id.
func (p *Proc) PID() int { return p.pid }

// LogPath returns the path of the process's log file.
func (p *Proc) LogPath() string { return p.fp.LogPath }

// Log returns everything the process has written so far to its standard
// output and standard error, or "" once the log is gone.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.fp.LogPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// Done returns a channel closed once the process has exited and been
// reaped.
func (p *Proc) Done() <-chan struct{} { return p.fp.Exited() }

// Exited reports whether the process has exited and, if so, how: nil for a
// zero exit status, else an *exec.ExitError (a signal death included).
func (p *Proc) Exited() (bool, error) {
	if !p.fp.HasExited() {
		return false, nil
	}
	return true, p.fp.WaitErr()
}

// errExited is returned when signalling a process that already exited.
var errExited = errors.New("e2e: process already exited")

// signal sends sig to the process group, unless the process was reaped:
// its PID may then belong to someone else.
func (p *Proc) signal(sig syscall.Signal) error {
	if p.fp.HasExited() {
		return errExited
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("e2e: %v to %s (pid %d): %w", sig, p.Name, p.pid, err)
	}
	return nil
}

// Kill sends SIGKILL and waits until the process is reaped. Killing a
// process that already exited is a no-op.
func (p *Proc) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil && !errors.Is(err, errExited) {
		return err
	}
	<-p.Done()
	return nil
}

// Stop freezes the process with SIGSTOP (a paused host: it keeps its
// sockets and addresses but answers nothing). Cont resumes it.
func (p *Proc) Stop() error { return p.signal(syscall.SIGSTOP) }

// Cont resumes a process frozen by Stop with SIGCONT.
func (p *Proc) Cont() error { return p.signal(syscall.SIGCONT) }

// Term asks the process to exit with SIGTERM (followed by SIGCONT, so a
// stopped process gets to handle it) and waits up to TermTimeout. If the
// process is still running then, Term kills it and returns an error. A
// process that already exited is not an error.
func (p *Proc) Term() error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, errExited) {
			return nil
		}
		return err
	}
	_ = p.signal(syscall.SIGCONT)
	timer := time.NewTimer(TermTimeout)
	defer timer.Stop()
	select {
	case <-p.Done():
		return nil
	case <-timer.C:
		_ = p.Kill()
		return fmt.Errorf("e2e: %s (pid %d) ignored SIGTERM for %v; killed", p.Name, p.pid, TermTimeout)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// procSet tracks the running processes of one farm, so closing the farm
// (or an interrupt) can kill them.
type procSet struct {
	mu    sync.Mutex
	procs map[*Proc]struct{}
}

func newProcSet() *procSet { return &procSet{procs: make(map[*Proc]struct{})} }

func (s *procSet) add(p *Proc) {
	s.mu.Lock()
	s.procs[p] = struct{}{}
	s.mu.Unlock()
}

func (s *procSet) remove(p *Proc) {
	s.mu.Lock()
	delete(s.procs, p)
	s.mu.Unlock()
}

// killAll SIGKILLs every process in the set and waits for each.
func (s *procSet) killAll() {
	s.mu.Lock()
	procs := make([]*Proc, 0, len(s.procs))
	for p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	for _, p := range procs {
		_ = p.Kill()
	}
}
