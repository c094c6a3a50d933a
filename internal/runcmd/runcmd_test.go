package runcmd

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun checks the streams, their bound, the exit error and that argv is
// not given to a shell.
func TestRun(t *testing.T) {
	out, err := Run(context.Background(), []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 64, time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || out.Stdout != "out\n" || out.Stderr != "err\n" {
		t.Errorf("Run = %+v, %v", out, err)
	}
	out, err = Run(context.Background(), []string{"/bin/sh", "-c", "head -c 100000 /dev/zero"}, 10, time.Second)
	if err != nil || len(out.Stdout) != 10 {
		t.Errorf("bounded output: %d bytes, %v", len(out.Stdout), err)
	}
	out, err = Run(context.Background(), []string{"echo", "a; exit 3"}, 64, time.Second)
	if err != nil || out.Stdout != "a; exit 3\n" {
		t.Errorf("argv re-parsed: %+v, %v", out, err)
	}
}

// TestRunKillsGroup checks that the context's end kills the command's
// children too: a grandchild holding the output pipe would otherwise keep
// Run waiting for the wait bound.
func TestRunKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, []string{"/bin/sh", "-c", "sleep 30 & sleep 30; echo never"}, 64, 5*time.Second)
	if err == nil {
		t.Fatal("no error from a killed command")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v: the group's children outlived the kill", d)
	}
	if strings.Contains(err.Error(), "never") {
		t.Error(err)
	}
}
