//go:build linux

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procState returns the state letter of pid from /proc (R, S, T, Z, ...).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The state follows the parenthesised command name.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f[0]
}

// waitState polls until pid is in state want.
func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := procState(t, pid)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d in state %s, want %s", pid, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// netnsOf returns the network namespace identity of pid.
func netnsOf(t *testing.T, pid int) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testProcLifecycle drives a sleep process through stop, cont, kill.
func testProcLifecycle(t *testing.T, h *Host) {
	p := h.Start(t, "sleep", "30")
	if p.PID() <= 0 {
		t.Fatalf("PID %d", p.PID())
	}
	if done, _ := p.Exited(); done {
		t.Fatal("sleep exited at once")
	}
	// `ip netns exec` execs in place: the PID is sleep itself.
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/comm"); err != nil || strings.TrimSpace(string(b)) != "sleep" {
		t.Errorf("pid %d is %q (%v), want sleep", p.PID(), b, err)
	}
	if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
		t.Errorf("pgid %d (%v), want own group %d", pgid, err, p.PID())
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.PID(), "T")
	if err := p.Cont(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.PID(), "S")
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	done, err := p.Exited()
	if !done {
		t.Fatal("not exited after Kill")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("exit error %v, want death by SIGKILL", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop after exit succeeded")
	}
}

func TestProcLifecycle(t *testing.T) {
	f := NewFarm(t, 1)
	testProcLifecycle(t, f.Servers()[0])
}

func TestProcRunsInNamespace(t *testing.T) {
	f := NewFarm(t, 1)
	h := f.Servers()[0]
	p := h.Start(t, "sleep", "30")
	var want string
	if err := h.Do(func() error {
		l, err := os.Readlink("/proc/thread-self/ns/net")
		want = l
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := netnsOf(t, p.PID()); got != want {
		t.Errorf("process in namespace %s, want %s (%s)", got, want, h.NS)
	}
	if got := netnsOf(t, os.Getpid()); got == want {
		t.Errorf("test process itself is in %s", h.NS)
	}
}

func TestProcLogAndTerm(t *testing.T) {
	h := NewLoopFarm(t, 1).Servers()[0]
	p := h.Start(t, "sh", "-c", `echo out; echo err >&2; trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done`)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Log(), "err") {
		if time.Now().After(deadline) {
			t.Fatalf("log %q lacks output", p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	// Term on a stopped process still gets it to run its handler.
	if err := p.Term(); err != nil {
		t.Fatal(err)
	}
	if done, err := p.Exited(); !done || err != nil {
		t.Errorf("Exited() = %v, %v; want clean exit", done, err)
	}
	if log := p.Log(); !strings.Contains(log, "out\n") || !strings.Contains(log, "bye\n") {
		t.Errorf("log %q lacks stdout or the TERM handler's output", log)
	}
	if err := p.Term(); err != nil {
		t.Errorf("Term after exit: %v", err)
	}
}

func TestCommand(t *testing.T) {
	f := NewFarm(t, 1)
	h := f.Servers()[0]
	out, err := h.Command(context.Background(), "cat", "/proc/net/dev").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), h.Iface+":") {
		t.Errorf("%s's /proc/net/dev lacks %s:\n%s", h.Name, h.Iface, out)
	}
	if strings.Contains(string(out), portPrefix) {
		t.Errorf("%s sees bridge ports:\n%s", h.Name, out)
	}
}

func TestStartKilledByCleanup(t *testing.T) {
	h := NewLoopFarm(t, 1).Servers()[0]
	var p *Proc
	t.Run("inner", func(t *testing.T) {
		p = h.Start(t, "sleep", "30")
	})
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("process outlived the test that started it")
	}
}
