package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usherlb/usher/internal/farm"
	"github.com/usherlb/usher/internal/testutil"
)

// TestFarmSIGHUP runs a farm of three agent processes, each reading a
// configuration file, rewrites the files with a new log level and capacity
// and sends every agent SIGHUP with kill: the new capacity shows in every
// member's report and the log level in every log, while the leader, the
// term and the membership stay as they were: nobody left, nobody exited.
func TestFarmSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agent processes; skipped with -short")
	}
	bin := buildUsher(t)
	names := []string{"r1", "r2", "r3"}
	pp := farm.NewPortPicker()
	addrs, err := pp.PickLoopback(names)
	if err != nil {
		t.Fatal(err)
	}
	vipPort, err := pp.Take(1, func(p uint16) bool { return farm.UDPFree(farm.Loopback(p)) })
	if err != nil {
		t.Fatal(err)
	}
	f, err := farm.New("usher-reload-*", farm.Loopback(vipPort), addrs, 3, &http.Client{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(5 * time.Second) })
	conf := func(a *farm.Agent) string { return filepath.Join(f.Dir, a.Name+".hcl") }
	write := func(level string, capacity int) {
		for _, a := range f.Agents {
			src := "log_level = \"" + level + "\"\ncapacity = " + strconv.Itoa(capacity) + "\n"
			if err := os.WriteFile(conf(a), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("info", 50)
	for _, a := range f.Agents {
		args, err := f.Args(a, "-config", conf(a))
		if err != nil {
			t.Fatal(err)
		}
		// The farm's agents take -log-level info, which would win over
		// the file's: the file decides here.
		if i := slices.Index(args, "-log-level"); i >= 0 {
			args = slices.Delete(args, i, i+2)
		}
		if err := f.Start(bin, a, args, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	leader := func() (string, uint64) {
		var name string
		var term uint64
		for _, a := range f.Agents {
			st, err := f.Status(ctx, a)
			if err != nil || st.Leader == "" || (name != "" && (st.Leader != name || st.Term != term)) {
				return "", 0
			}
			name, term = st.Leader, st.Term
		}
		return name, term
	}
	testutil.Eventually(t, 30*time.Second, "a leader every agent agrees on", func() bool { n, _ := leader(); return n != "" })
	name, term := leader()

	write("debug", 77)
	for _, a := range f.Agents {
		if err := a.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "capacity 77 in every member's report", func() bool {
		ms, err := f.Members(ctx, f.Agents[0])
		if err != nil || len(ms) != len(names) {
			return false
		}
		for _, m := range ms {
			if m.Capacity != 77 || m.Status != "alive" {
				return false
			}
		}
		return true
	})
	for _, a := range f.Agents {
		log, _ := os.ReadFile(filepath.Join(f.Dir, a.Name+".log"))
		for _, want := range []string{"SIGHUP: reloaded", "log_level=debug"} {
			if !strings.Contains(string(log), want) {
				t.Errorf("%s's log lacks %q", a.Name, want)
			}
		}
	}
	if n, tm := leader(); n != name || tm != term {
		t.Errorf("leader %s in term %d before SIGHUP, %q in term %d after", name, term, n, tm)
	}
	if n := f.ExitedCount(); n > 0 {
		t.Errorf("%d agents exited after SIGHUP", n)
	}
}

// buildUsher builds the usher binary into a temporary directory, or skips
// the test without the go command.
func buildUsher(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build the usher binary")
	}
	bin := filepath.Join(t.TempDir(), "usher")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
