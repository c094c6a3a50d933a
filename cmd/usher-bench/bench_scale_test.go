//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usherlb/usher/node"
)

func TestPromSum(t *testing.T) {
	body := []byte(`# HELP usher_memberlist_udp_sent_bytes_total Bytes memberlist sent over UDP.
# TYPE usher_memberlist_udp_sent_bytes_total counter
usher_memberlist_udp_sent_bytes_total 1234.5
usher_memberlist_udp_sent_bytes_total_extra 99
usher_memberlist_tcp_sent_bytes_total{network="lan"} 100
usher_memberlist_tcp_sent_bytes_total{network="wan"} 1e3
usher_memberlist_tcp_sent_bytes_totalled 7
usher_sessions 3 1700000000000
`)
	tests := []struct {
		name  string
		want  float64
		found bool
	}{
		{"usher_memberlist_udp_sent_bytes_total", 1234.5, true},
		{"usher_memberlist_tcp_sent_bytes_total", 1100, true},
		{"usher_sessions", 3, true},
		{"usher_memberlist", 0, false},
		{"usher_absent", 0, false},
	}
	for _, tt := range tests {
		got, found := promSum(body, tt.name)
		if got != tt.want || found != tt.found {
			t.Errorf("promSum(%s) = %v, %v; want %v, %v", tt.name, got, found, tt.want, tt.found)
		}
	}
}

func TestStatusField(t *testing.T) {
	status := []byte("Name:\tusher\nVmPeak:\t  812345 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\nThreads:\t9\nBad:\tx kB\n")
	tests := []struct {
		key  string
		want int64
		ok   bool
	}{
		{"VmRSS", 30720, true},
		{"VmHWM", 40960, true},
		{"Threads", 9, true},
		{"VmRS", 0, false},
		{"Bad", 0, false},
		{"VmSwap", 0, false},
	}
	for _, tt := range tests {
		got, ok := statusField(status, tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("statusField(%s) = %d, %v; want %d, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLiveHeapMB(t *testing.T) {
	tests := []struct {
		name string
		log  string
		want float64
		ok   bool
	}{
		{"none", "2026-11-26T21:50:23Z [INFO] usher.agent: started\n", 0, false},
		{"last wins", "gc 1 @0.005s 1%: 0.01+0.3+0.02 ms clock, 0.03+0/0.2/0+0.04 ms cpu, 3->3->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n" +
			"2026-11-26T21:50:23Z [INFO] usher.agent: a line with 1->2->3 MB in it\n" +
			"gc 7 @9.1s 0%: 0.02+1.1+0.01 ms clock, 0.05+0.1/0.9/0+0.03 ms cpu, 21->22->14 MB, 22 MB goal, 0 MB stacks, 0 MB globals, 2 P\n", 14, true},
	}
	for _, tt := range tests {
		got, ok := liveHeapMB([]byte(tt.log))
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: liveHeapMB = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAgreedLeader(t *testing.T) {
	st := func(name, leader, role string, term uint64, members int) node.Status {
		return node.Status{Node: name, Leader: leader, Role: role, Term: term, Members: members}
	}
	tests := []struct {
		name    string
		sts     []node.Status
		ok      []bool
		idx     int
		agreed  bool
		joined  bool
		mostIdx int
	}{
		{"agreed", []node.Status{st("a", "b", "follower", 2, 3), st("b", "b", "leader", 2, 3), st("c", "b", "non-voter", 2, 3)},
			[]bool{true, true, true}, 1, true, true, 1},
		{"one silent", []node.Status{st("a", "b", "follower", 2, 3), st("b", "b", "leader", 2, 3), {}},
			[]bool{true, true, false}, -1, false, false, 1},
		{"split", []node.Status{st("a", "a", "leader", 3, 3), st("b", "b", "leader", 2, 2), st("c", "a", "follower", 3, 3)},
			[]bool{true, true, true}, -1, false, false, 0},
		{"named leader does not lead", []node.Status{st("a", "b", "follower", 2, 3), st("b", "b", "follower", 2, 3), st("c", "b", "follower", 2, 3)},
			[]bool{true, true, true}, -1, false, true, 1},
		{"nobody leads", []node.Status{st("a", "", "follower", 1, 3), st("b", "", "follower", 1, 3)},
			[]bool{true, true}, -1, false, true, -1},
		{"empty", nil, nil, -1, false, false, -1},
	}
	for _, tt := range tests {
		idx, _, agreed := agreedLeader(tt.sts, tt.ok)
		if idx != tt.idx || agreed != tt.agreed {
			t.Errorf("%s: agreedLeader = %d, %v; want %d, %v", tt.name, idx, agreed, tt.idx, tt.agreed)
		}
		if got := allJoined(tt.sts, tt.ok, 3); got != tt.joined {
			t.Errorf("%s: allJoined = %v, want %v", tt.name, got, tt.joined)
		}
		if got := mostNamedLeader(tt.sts, tt.ok); got != tt.mostIdx {
			t.Errorf("%s: mostNamedLeader = %d, want %d", tt.name, got, tt.mostIdx)
		}
	}
}

// TestScaleWrite checks that the section renders from figures, with the
// goal verdicts.
func TestScaleWrite(t *testing.T) {
	f := &scaleFigures{
		Plan: scalePlan{Sizes: []int{4, 8}, Repeats: 2, Window: time.Second, Form: time.Minute, Sessions: 1000, SessionRepeats: 2},
		Sizes: []*scaleSize{
			{N: 4, Runs: 2, Join: spread{1, 2}, Leader: spread{1, 2}, Term: spread{2, 2}, Elections: spread{0, 0},
				StaleP99: spread{100, 120}, GossipMed: spread{1000, 2000}, RSSMed: spread{20, 21}, LogCounts: map[string]spread{}},
			{N: 8, Runs: 2, FormFailed: 1, Join: spread{3}, Elections: spread{0, 2}, Notes: []string{"repeat 2: did not form"},
				LogCounts: map[string]spread{"leader changed": {3, 5}}},
		},
		Sessions: &sessionFigures{Target: 1000, Counted: spread{1000, 1000}, RSS0: spread{20, 21}, RSS: spread{120, 130}},
	}
	var b strings.Builder
	f.write(&b, "", 2)
	out := b.String()
	for _, want := range []string{
		"## 5. Scale\n",
		"| agent RSS with 1000 tracked sessions | ≤ 100 MiB | 125.0 (120.0–130.0) MiB | **not met** |",
		"| 4 agents join and agree on a leader within 1m0s | every repeat | 2 of 2 repeats | met |",
		"| 8 agents join and agree on a leader within 1m0s | every repeat | 1 of 2 repeats | **not met** |",
		"| 8 agents: no election during the window | 0 | 1 (0–2) | **not met** |",
		"| 4 | 2 of 2 | 1.5 (1.0–2.0) |",
		"- 8 agents, repeat 2: did not form",
		"| 8 | 4 (3–5) |",
		"### Elections inside the window\n\n8 agents (up to 2 in one repeat) held elections after they had formed, on a machine of 2 cores.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4 agents (up to") {
		t.Errorf("report names the 4 agents, which held no election, among those that did:\n%s", out)
	}
}

// buildUsher builds the usher command into a temporary directory.
func buildUsher(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build the usher binary for the agents")
	}
	bin := filepath.Join(t.TempDir(), "usher")
	if out, err := exec.Command(gobin, "build", "-o", bin, "../usher").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBenchScaleSmall runs part 5 for real on a small scale: four agents
// and 5,000 sessions, and checks that the cluster formed, the figures were
// taken and every process and directory is gone afterwards.
func TestBenchScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agent processes; skipped with -short")
	}
	bin := buildUsher(t)
	before := scratchDirs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var log strings.Builder
	p := scalePlan{Sizes: []int{4}, Repeats: 1, Window: 2 * time.Second, Form: 30 * time.Second, Sessions: 5000, SessionRepeats: 1}
	f, err := benchScaleWith(ctx, benchOpts{usher: bin, log: &log}, p)
	t.Logf("progress:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	sz := f.Sizes[0]
	if sz.Runs != 1 || sz.FormFailed != 0 || len(sz.Join) != 1 || len(sz.Leader) != 1 {
		t.Fatalf("the 4-agent cluster did not form: %+v", sz)
	}
	if len(sz.StaleP99) != 1 || sz.StaleP99[0] <= 0 || sz.StaleP99[0] > 10000 {
		t.Errorf("staleness p99 %v ms, want one sample in (0, 10 s]", sz.StaleP99)
	}
	if sz.GossipMed.median() <= 0 {
		t.Errorf("memberlist bytes/s %v: the counters did not move", sz.GossipMed)
	}
	if sz.RSSMed.median() <= 1 || sz.RSSMax.median() < sz.RSSMed.median() {
		t.Errorf("RSS median %v, max %v MiB", sz.RSSMed, sz.RSSMax)
	}
	sf := f.Sessions
	if len(sf.Counted) != 1 || sf.Counted[0] < 5000 {
		t.Errorf("sessions counted %v, want 5000; notes %v", sf.Counted, sf.Notes)
	}
	if len(sf.RSS) != 1 || sf.RSS[0] <= 0 || sf.RSS0[0] <= 0 {
		t.Errorf("session RSS %v, at 0 sessions %v", sf.RSS, sf.RSS0)
	}
	var b strings.Builder
	f.write(&b, "", 2)
	if !strings.HasPrefix(b.String(), "## 5. Scale\n") {
		t.Errorf("section starts %q", b.String()[:min(40, b.Len())])
	}
	files, err := f.plot(t.TempDir())
	if err != nil || len(files) != len(scalePlots) {
		t.Errorf("plot wrote %v: %v", files, err)
	}
	if after := scratchDirs(t); len(after) > len(before) {
		t.Errorf("scratch directories left behind: %v (before: %v)", after, before)
	}
}

// scratchDirs lists the part's scratch directories in the temp dir.
func scratchDirs(t *testing.T) []string {
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "usher-scale-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBenchScaleFull runs the whole part 5 when USHER_BENCH_SCALE is set
// (to "quick" for the quick plan) and prints its section; it takes several
// minutes and loads the machine. USHER_BENCH_SCALE_SIZES (such as "128")
// replaces the cluster sizes and USHER_BENCH_SCALE_LAN_SIZES the sizes also
// run with profile lan (empty for none), USHER_BENCH_BIN names a binary to use,
// USHER_BENCH_PLOTS a directory for the plots.
func TestBenchScaleFull(t *testing.T) {
	mode := os.Getenv("USHER_BENCH_SCALE")
	if mode == "" {
		t.Skip("set USHER_BENCH_SCALE=1 (or quick) to run part 5 of usher-bench")
	}
	bin := os.Getenv("USHER_BENCH_BIN")
	if bin == "" {
		bin = buildUsher(t)
	}
	o := benchOpts{usher: bin, quick: mode == "quick", log: testWriter{t}}
	p := scalePlanFor(o)
	sizesFrom := func(env string, dst *[]int) {
		sizes, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		*dst = nil
		for s := range strings.SplitSeq(sizes, ",") {
			if s == "" {
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			*dst = append(*dst, n)
		}
	}
	sizesFrom("USHER_BENCH_SCALE_SIZES", &p.Sizes)
	sizesFrom("USHER_BENCH_SCALE_LAN_SIZES", &p.LanSizes)
	f, err := benchScaleWith(context.Background(), o, p)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("USHER_BENCH_PLOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	files, err := f.plot(dir)
	if err != nil {
		t.Error(err)
	}
	var b strings.Builder
	f.write(&b, dir, runtime.NumCPU())
	fmt.Fprintf(os.Stdout, "%s\nplots: %v in %s\n", b.String(), files, dir)
}

// testWriter logs each write as a test log line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}
