//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a farm-holding child process for
// TestCrashCleanup instead of running the tests.
const helperEnv = "USHER_E2E_HELPER"

// TestHelperHoldFarm is the child side of TestCrashCleanup: it builds a
// farm, starts a process on it, reports both on stdout and waits to be
// signalled. It does nothing in a normal run.
func TestHelperHoldFarm(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestCrashCleanup")
	}
	f := NewFarm(t, 1)
	p := f.Servers()[0].Start(t, "sleep", "30")
	fmt.Printf("ready %d %s\n", p.PID(), strings.Join(f.Namespaces(), " "))
	time.Sleep(30 * time.Second)
}

// holdFarm runs the helper and returns it with the sleep PID and the
// namespaces of its farm.
func holdFarm(t *testing.T) (*exec.Cmd, int, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldFarm$", "-test.count=1")
	// The helper dies without running its cleanups; its temporary
	// directories go under ours, which the testing package removes.
	cmd.Env = append(os.Environ(), helperEnv+"=1", "TMPDIR="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) < 3 || f[0] != "ready" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return cmd, pid, f[2:]
}

// waitGone polls until pid no longer exists (a zombie counts as alive).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for pidAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCrashCleanup(t *testing.T) {
	if reason := farmUnsupported(); reason != "" {
		t.Skip(reason)
	}
	t.Run("SIGINT tears everything down", func(t *testing.T) {
		cmd, pid, names := holdFarm(t)
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGINT) {
			t.Errorf("helper exited with %d (%v), want %d", code, err, 128+int(syscall.SIGINT))
		}
		waitGone(t, pid)
		left, err := listNamespaces()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if slices.Contains(left, n) {
				t.Errorf("namespace %s survived SIGINT", n)
			}
		}
	})
	t.Run("SIGKILL leaves namespaces for the sweep", func(t *testing.T) {
		cmd, pid, names := holdFarm(t)
		t.Cleanup(func() {
			for _, n := range names {
				_, _ = ip("netns", "del", n) // only if the sweep failed
			}
		})
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		waitGone(t, pid) // parent-death signal
		removed, err := SweepStale()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !slices.Contains(removed, n) {
				t.Errorf("sweep removed %v, missing %s", removed, n)
			}
		}
	})
}
