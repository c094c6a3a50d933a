package loadsrc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "load.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommand(t *testing.T) {
	cases := []struct {
		name    string
		command []string
		shell   bool
		want    int
		err     string
	}{
		{name: "script", command: []string{script(t, `echo "12 sessions"`)}, want: 12},
		{name: "argv reaches the program", command: []string{script(t, `echo "$2"`), "x", "7.6"}, want: 8},
		{name: "no shell unless asked", command: []string{"/bin/echo", "$((2+3))"}, err: `output "$((2+3))": not a number`},
		{name: "shell when asked", command: []string{"echo $((2+3))"}, shell: true, want: 5},
		{name: "negative", command: []string{"/bin/echo", "-1"}, err: "not a load"},
		{name: "no output", command: []string{"/bin/true"}, err: "no output"},
		{name: "exit status and stderr", command: []string{script(t, "echo broken >&2; exit 3")}, err: "exit status 3: broken"},
		{name: "missing program", command: []string{"/nonexistent/x"}, err: "no such file"},
		{name: "long output bounded", command: []string{script(t, `echo 9; yes | head -c 1000000`)}, want: 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := (&Spec{Source: "command", Command: tc.command, Shell: tc.shell}).Validate()
			if err != nil {
				t.Fatal(err)
			}
			checkPoll(t, newCommand(set), tc.want, tc.err)
		})
	}
}

// TestCommandTimeoutKillsGroup: the timeout kills the shell and its child
// (which holds stdout open): Poll returns long before the child's sleep ends,
// and the child is gone.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	set, err := (&Spec{Source: "command", Shell: true, Command: []string{"sleep 30 & echo $! > " + pidFile + "; wait"}}).Validate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = newCommand(set).Poll(ctx)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("Poll() error %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Poll took %s", d)
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// A killed child is reaped by init; its /proc entry goes soon after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep (pid %s) survived the timeout", strings.TrimSpace(string(pid)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
