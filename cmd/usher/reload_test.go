package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/node"
)

// TestAgentReload runs the agent from a configuration file, changes the
// file and sends this process SIGHUP, then changes it again and asks
// through `usher reload`: each time the new log level and capacity apply,
// the other changed keys are named as needing a restart, and the agent
// neither exits nor leaves (it goes on serving in the same term).
func TestAgentReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "usher.hcl")
	write := func(level string, capacity int, policy string) {
		t.Helper()
		src := "log_level = \"" + level + "\"\ncapacity = " + strconv.Itoa(capacity) + "\npolicy = \"" + policy + "\"\n"
		if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("info", 100, "least-loaded")
	api := testutil.ClosedTCPAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"agent", "-dev", "-config", conf, "-node", "n1",
			"-vip", "127.0.0.1:0", "-session-addr", "127.0.0.1:0", "-http", api, "-bind", "127.0.0.1:0"},
			&lockedBuffer{}, &logs)
	}()
	status := func() node.Status {
		t.Helper()
		code, out, errOut := runArgs(context.Background(), "status", "-http", api, "-json")
		var st node.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status: exit %d, %q, %q", code, out, errOut)
		}
		return st
	}
	waitFor(t, "the agent to serve", func() bool {
		code, out, _ := runArgs(context.Background(), "status", "-http", api, "-json")
		var st node.Status
		return code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Serving
	})
	before := status()

	write("debug", 7, "p2c")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(logs.String(), "SIGHUP: reloaded") })
	for _, want := range []string{"log_level=debug", "capacity=7", "needs_restart=policy"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the reload's log line lacks %q:\n%s", want, logs.String())
		}
	}
	if st := status(); st.Capacity != 7 || st.Term != before.Term || !st.Serving {
		t.Errorf("after SIGHUP: capacity %d, term %d serving %v; want 7, term %d, serving", st.Capacity, st.Term, st.Serving, before.Term)
	}

	write("warn", 9, "p2c")
	code, out, errOut := runArgs(context.Background(), "reload", "-http", api)
	if code != 0 || !strings.Contains(out, "log_level=warn, capacity=9") || !strings.Contains(out, "needs a restart: policy") {
		t.Errorf("usher reload: exit %d, %q, %q", code, out, errOut)
	}
	if st := status(); st.Capacity != 9 || st.Term != before.Term || !st.Serving {
		t.Errorf("after usher reload: capacity %d, term %d, serving %v", st.Capacity, st.Term, st.Serving)
	}
	// The API logs the reload at info level, after the level became warn:
	// the API's own (named) logger follows the new level.
	if strings.Contains(logs.String(), "reloaded through the api") {
		t.Errorf("an info line after the level became warn:\n%s", logs.String())
	}

	// A file that does not build changes nothing.
	write("loud", 11, "p2c")
	if code, _, errOut := runArgs(context.Background(), "reload", "-http", api); code == 0 || !strings.Contains(errOut, "log_level") {
		t.Errorf("a bad file reloaded: exit %d, %q", code, errOut)
	}
	if st := status(); st.Capacity != 9 {
		t.Errorf("a bad file changed the capacity to %d", st.Capacity)
	}
	if strings.Contains(logs.String(), "leav") {
		t.Errorf("the agent left:\n%s", logs.String())
	}
	select {
	case code := <-done:
		t.Fatalf("the agent exited (%d) during the reloads:\n%s", code, logs.String())
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}
