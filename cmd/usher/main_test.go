package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/usherlb/usher/internal/testutil"
	"github.com/usherlb/usher/node"
)

// asUsherEnv, set to 1, makes the test binary run as usher: the command
// line is usher's (TestFarmCredentialsCLI runs commands of it).
const asUsherEnv = "USHER_TEST_AS_USHER"

func TestMain(m *testing.M) {
	if os.Getenv(asUsherEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// runArgs runs the command line and returns its exit code and output.
func runArgs(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// testAgent starts an in-process agent on free loopback ports.
func testAgent(t *testing.T) *node.Agent {
	t.Helper()
	return startTestAgent(t, "")
}

// startTestAgent starts an in-process dev agent on free loopback ports, its
// HTTP API on http ("" for none), and waits until it answers probes.
func startTestAgent(t *testing.T, http string) *node.Agent {
	t.Helper()
	return startTestAgentWith(t, http, nil)
}

// startTestAgentWith is startTestAgent with the configuration passed
// through adjust (when not nil) first.
func startTestAgentWith(t *testing.T, http string, adjust func(*node.Config)) *node.Agent {
	t.Helper()
	c := node.DevConfig()
	c.VIP, c.SessionAddr, c.HTTP, c.Bind = "127.0.0.1:0", "127.0.0.1:0", http, "127.0.0.1:0"
	if adjust != nil {
		adjust(&c)
	}
	a, err := node.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.AwaitServing(t, a)
	return a
}

func TestHelp(t *testing.T) {
	code, out, _ := runArgs(context.Background(), "-h")
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not mention %s:\n%s", c.name, out)
		}
		code, _, errOut := runArgs(context.Background(), c.name, "-h")
		if code != 0 || !strings.Contains(errOut, "Usage: usher "+c.name) {
			t.Errorf("%s -h: exit %d, %q", c.name, code, errOut)
		}
	}
	_, _, agentHelp := runArgs(context.Background(), "agent", "-h")
	for _, f := range []string{"-config", "-dev", "-session-addr", "-require-ticket", "-stock-amplification", "-join"} {
		if !strings.Contains(agentHelp, f) {
			t.Errorf("agent -h lacks %s", f)
		}
	}
	if code, _, _ := runArgs(context.Background()); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
	if code, _, errOut := runArgs(context.Background(), "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs(context.Background(), "version")
	if code != 0 || !strings.HasPrefix(out, "usher "+node.Version+" ") {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(good, []byte("node_name = \"a\"\nsession_addr = \"127.0.0.1:3479\"\n"), 0o600)
	os.WriteFile(bad, []byte("node_name = \"a\"\n  keepalive_interval = \"soon\"\n"), 0o600)
	// Three mistakes of three kinds, all reported in one run, in order.
	many := filepath.Join(dir, "many.hcl")
	os.WriteFile(many, []byte("capacity = 0\nbogus = 1\nbackups = \"two\"\npolicy = \"fastest\"\n"), 0o600)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"validate", good}, 0, "valid"},
		{[]string{"validate", bad}, 1, bad + `:2:3: keepalive_interval: "soon" is not a duration`},
		{[]string{"validate", filepath.Join(dir, "missing.hcl")}, 1, "no such file"},
		{[]string{"validate", many}, 1, many + ":1:1: capacity: \"0\" must be at least 1\n" +
			many + ":2:1: Unsupported argument; An argument named \"bogus\" is not expected here.\n" +
			many + ":3:11: backups: a whole number is required\n" +
			many + ":4:1: policy: \"fastest\" is not one of"},
		{[]string{"validate"}, 2, "Usage"},
	}
	for _, tt := range tests {
		code, out, errOut := runArgs(context.Background(), tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%v: exit %d, out %q, err %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}

func TestProbe(t *testing.T) {
	a := testAgent(t)
	code, out, errOut := runArgs(context.Background(), "probe", "-json", "-count", "3", a.VIPAddr().String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %q", len(lines), out)
	}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r["server"] != a.SessionAddr().String() || r["term"] != float64(a.Term()) || len(r) != 3 {
			t.Errorf("probe result %v", r)
		}
		if _, ok := r["rtt_ms"].(float64); !ok {
			t.Errorf("rtt_ms missing: %v", r)
		}
	}

	code, out, _ = runArgs(context.Background(), "probe", a.VIPAddr().String())
	if code != 0 || !strings.HasPrefix(out, "server="+a.SessionAddr().String()+" term="+strconv.FormatUint(a.Term(), 10)+" rtt=") {
		t.Errorf("text probe: exit %d, %q", code, out)
	}
	// A silent address: a non-zero exit after the timeout.
	code, _, errOut = runArgs(context.Background(), "probe", "-timeout", "200ms", "127.0.0.1:9")
	if code != 1 || !strings.Contains(errOut, "no answer") {
		t.Errorf("silent address: exit %d, %q", code, errOut)
	}
	if code, _, _ := runArgs(context.Background(), "probe", "not an address"); code != 2 {
		t.Errorf("bad address: exit %d", code)
	}
}

func TestAgentCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"agent", "-dev", "-vip", "127.0.0.1:0", "-session-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-log-level", "warn"}, &bytes.Buffer{}, &errOut)
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop")
	}

	// Invalid settings are refused, naming the key.
	code, _, e := runArgs(context.Background(), "agent", "-dev", "-capacity", "0")
	if code != 1 || !strings.Contains(e, `capacity: "0"`) {
		t.Errorf("bad capacity: exit %d, %q", code, e)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "usher.hcl")
	os.WriteFile(bad, []byte("nodename = \"x\"\n"), 0o600)
	code, _, e = runArgs(context.Background(), "agent", "-config", bad)
	if code != 1 || !strings.Contains(e, bad+":1:1:") || !strings.Contains(e, "nodename") {
		t.Errorf("bad file: exit %d, %q", code, e)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		http string
		json bool
		pos  []string
	}{
		{[]string{"n2"}, "", false, []string{"n2"}},
		{[]string{"-http", "A", "n2"}, "A", false, []string{"n2"}},
		{[]string{"n2", "-http", "A"}, "A", false, []string{"n2"}},
		{[]string{"n2", "-json", "n3", "-http=A"}, "A", true, []string{"n2", "n3"}},
		{[]string{"n2", "--", "-json"}, "", false, []string{"n2", "-json"}},
		{[]string{"--", "-http", "A"}, "", false, []string{"-http", "A"}},
		{nil, "", false, nil},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		http := fs.String("http", "", "")
		js := fs.Bool("json", false, "")
		if err := parseInterspersed(fs, tt.args); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if *http != tt.http || *js != tt.json || !slices.Equal(fs.Args(), tt.pos) {
			t.Errorf("%q: http %q json %v args %q, want %q %v %q", tt.args, *http, *js, fs.Args(), tt.http, tt.json, tt.pos)
		}
	}
}
