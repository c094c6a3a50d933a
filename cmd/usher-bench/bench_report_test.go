//go:build linux

package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oddReport returns one made-up run whose every figure is unlike what a
// real run on the machines the report was written on gave (7 cores, N = 7
// and 31, a 333 KiB buffer, a 1234.5 ns decision...), so that a figure the
// report prints from anywhere but the run stands out. Every field is set,
// so that a field the results' JSON drops shows in TestResultsRoundTrip.
func oddReport() *benchReport {
	probe := map[string]*probeFigures{}
	for i, n := range benchServerNames {
		k := float64(i + 1)
		probe[n] = &probeFigures{
			Rate: spread{4321 * k, 4400 * k, 4100 * k}, CPU: spread{31337, 31400, 31200},
			P50:     map[int]spread{50: {123.4 * k, 125}, 90: {234.5, 236}},
			P99:     map[int]spread{50: {1234.5, 1250}, 90: {2345.6, 2360}},
			Lost:    map[int]spread{50: {0.0123 * k}, 90: {0.1111 * k}},
			Offered: map[int]float64{50: 2161, 90: 3889},
		}
	}
	return &benchReport{
		Schema:  resultsSchema,
		Started: time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC), Finished: time.Date(2031, 2, 3, 4, 42, 17, 0, time.UTC),
		Args: []string{"-repeats", "11"}, Repeats: 11, Duration: 3 * time.Second,
		Machine: "Odd CPU, 7 cores (GOMAXPROCS 7), Linux 9.9.9, go9.9 linux/amd64, usher deadbee", Cores: 7,
		LoadStart: "9.87, 6.54, 3.21", LoadEnd: "1.23, 4.56, 7.89", RcvBuf: 333 << 10,
		PlotDir: "docs/odd", ResultsFile: "docs/odd/results.json",
		Probe: probe,
		Allocs: allocFigures{Command: "go test -bench odd", Lines: []string{
			"BenchmarkResponderServe/single-7 50000 4242 ns/op 0 B/op 0 allocs/op",
			"BenchmarkResponderAnswer-7 50000 1234.5 ns/op 207.36 MB/s 0 B/op 0 allocs/op",
		}, Err: ""},
		Answers: allocFigures{Command: "go test -bench answers", Lines: []string{
			"BenchmarkResponderAnswer-7 100000 321 ns/op 0 B/op 0 allocs/op",
			"BenchmarkResponderStrictChallenge-7 100000 777 ns/op 56 B/op 2 allocs/op",
		}},
		Proxy: &proxyFigures{Sessions: 4321, Nginx: "nginx version: nginx/0.0.7", Install: "installed for the test",
			SetupRate: map[string]spread{balNginx: {1111, 1212}, balUsher: {2222, 2323}},
			CPUPerM:   map[string]spread{balNginx: {13.13, 14.14}, balUsher: {0.313, 0.414}},
			Survived:  map[string]spread{balNginx: {0.01, 0.02}, balUsher: {0.97, 0.98}},
			SetupP50:  map[string]spread{balNginx: {7.77, 8.88}, balUsher: {6.66, 5.55}},
		},
		Failover: []failoverFigures{
			{Label: "keepalived, odd", File: "odd.json", N: 17, P50: 1111, P95: 2222, P99: 3333, Max: 4444, Started: "2031-02-02T01:02:03Z"},
			{Label: "Usher, odd", File: "odd2.json", Missing: "not measured"},
		},
		Busy: []busyFigures{
			{Label: "keepalived, odd", File: "odd3.json", Hogs: 7, Writers: 3, WatchSeconds: 611, AnsweredPct: 97.25,
				LongestGapMs: 4321, Changes: 2, Deaths: 13, P50: 5555, P99: 6666, Started: "2031-03-03T01:02:03Z"},
			{Label: "Usher, odd", File: "odd4.json", Missing: "not measured"},
		},
		Balance: oddBalance(),
		Scale:   oddScale(),
		Attack:  oddAttack(),
	}
}

// oddAttack is part 6 of oddReport: a baseline and one attack that
// misses, a 61-second window.
func oddAttack() *attackFigures {
	return &attackFigures{
		Started: "2031-04-05T06:07:08Z", LoadStart: "3.21 2.10 1.09", LoadEnd: "4.32 3.21 2.10",
		WindowSeconds: 61, LegitSessionsPerS: 211, LegitSessionSeconds: 1.5,
		CapacityPerS: 34567.8, RateCapPerS: 45678, SaturationPerS: 34567.8, Strict: true,
		MinAnsweredPct: 98, MaxP99Ratio: 3,
		Windows: []attackWindow{
			{Attack: "baseline", What: "no attack", SessionsTried: 12871, SessionsSetUp: 12870, SessionPct: 99.99,
				ProbesSent: 12875, ProbesAnswered: 12870, ProbePct: 99.96, SetupP50Ms: 1.23, SetupP99Ms: 6.54,
				LeaderCPUPct: 12.3, Verdict: "baseline"},
			{Attack: "one-source-odd", What: "odd requests from one source", AttackPerS: 34567.8,
				SessionsTried: 12860, SessionsSetUp: 12001, SessionPct: 93.32, ProbesSent: 14444, ProbesAnswered: 12001,
				ProbePct: 83.09, SetupP50Ms: 2.34, SetupP99Ms: 987.6, LeaderCPUPct: 97.5,
				Drops:   map[string]float64{`usher_probes_dropped{reason="rate_limited"}`: 123456, "usher_tickets_refused": 42},
				Verdict: "fail: 83.09% of probes answered < 98%"},
		},
	}
}

// oddBalance is part 4 of oddReport: farms of 7 and 31 nodes, reports
// 0.3 s and 3 s late.
func oddBalance() *balanceFigures {
	f := &balanceFigures{Seeds: 3, Elapsed: 47 * time.Second, Model: balanceModel{
		Nodes: 7, Stale: time.Second, Rate: 8, MeanLen: 45 * time.Second, Sigma: 1.1, Capacity: 1234,
		Publish: 333 * time.Millisecond, AcceptDelay: 17 * time.Millisecond, Warmup: 77 * time.Second,
		Measure: 66 * time.Second, Window: 250 * time.Millisecond, Threads: 5,
	}}
	for _, n := range []int{7, 31} {
		for _, st := range []time.Duration{300 * time.Millisecond, 3 * time.Second} {
			f.Cases = append(f.Cases, &balanceCase{Nodes: n, Stale: st, Policy: "least-loaded", Lost: 1,
				Avg: spread{1.011, 1.012}, P99: spread{1.021, 1.022}, Worst: spread{1.031, 1.032},
				Share: spread{0.07, 0.08}, Share9: spread{0.05, 0.06}})
		}
		f.Cases = append(f.Cases, &balanceCase{Nodes: n, Stale: 0, Policy: "coturn", Lost: 2,
			Avg: spread{1.041, 1.042}, P99: spread{1.051, 1.052}, Worst: spread{1.061, 1.062},
			Share: spread{0.41, 0.42}, Share9: spread{0.39, 0.4}})
	}
	return f
}

// oddScale is part 5 of oddReport: 5 and 9 agents, the 9 failing once
// with fast and forming with lan.
func oddScale() *scaleFigures {
	size := func(n int, profile string, failed int, elections spread) *scaleSize {
		return &scaleSize{N: n, Profile: profile, Runs: 2, FormFailed: failed,
			Join: spread{1.5, 2.5}, Leader: spread{1.7, 2.7}, Term: spread{3, 4}, StaleP50: spread{111, 112},
			StaleP99: spread{222, 223}, StaleMax: spread{333, 334}, APIRTT: spread{4.4, 4.5},
			GossipMed: spread{5555, 5556}, GossipMax: spread{6666, 6667}, RSSMed: spread{17.5, 17.6},
			RSSMax: spread{27.5, 27.6}, CPU: spread{0.35, 0.36}, LeaderCPU: spread{0.045, 0.046},
			SelfCPU: spread{0.013, 0.014}, Elections: elections, Exited: spread{1, 0},
			Largest:   []string{"s001 (the leader)", "s002 (voter-eligible seed)"},
			LogCounts: map[string]spread{"leader changed": {7, 8}}, Notes: []string{"repeat 1: an odd note"}}
	}
	return &scaleFigures{
		Plan: scalePlan{Sizes: []int{5, 9}, LanSizes: []int{9}, Repeats: 2, Window: 7 * time.Second,
			Form: 42 * time.Second, Sessions: 7777, SessionRepeats: 2},
		Sizes: []*scaleSize{size(5, "fast", 0, spread{0, 3}), size(9, "fast", 1, spread{0}), size(9, "lan", 0, spread{0, 0})},
		Sessions: &sessionFigures{Target: 7777, Counted: spread{7777, 7777}, Drive: spread{1.23, 1.24},
			RSS0: spread{19.5, 19.6}, RSS: spread{23.5, 23.6}, HWM: spread{24.5, 24.6},
			Heap0: spread{3, 4}, Heap: spread{5, 6}, Notes: []string{"repeat 2: an odd session note"}},
		LoadStart: "2.22, 3.33, 4.44", LoadEnd: "5.55, 6.66, 7.77", LoadPeak: 12.34,
	}
}

// render returns r's report.
func render(r *benchReport) string {
	var b strings.Builder
	r.write(&b)
	return b.String()
}

// TestReportFigures renders oddReport and checks that the prose states
// its figures, and none of those earlier runs left in the generator's
// text: a figure typed into the prose instead of taken from the run fails
// here.
func TestReportFigures(t *testing.T) {
	out := render(oddReport())
	reportHas(t, out, "report",
		"Generated by `usher-bench -repeats 11` on 2031-02-03 04:05 UTC in 37m11s.",
		"`docs/odd/results.json`",
		"- Machine: Odd CPU, 7 cores",
		"at the start: 9.87, 6.54, 3.21; at the end: 1.23, 4.56, 7.89.",
		"3s after a 750ms warm-up",
		"11 repeats",
		"as they would share any 7-core box",
		// Part 1.
		"the kernel's default receive buffer (333 KiB here, net.core.rmem_default)",
		"the servers' medians run from 1.23% to 4.92% at 50% load and from 11.11% to 44.44% at 90% load",
		"): 1234.5 ns warm in this run,",
		"| allocations per probe (`go test -bench`, every serving mode) | 0 | 0 | met |",
		"![probe_rate.png](docs/odd/probe_rate.png)",
		// Part 2.
		"The same 4321 client sessions",
		"(nginx version: nginx/0.0.7, installed for the test)",
		// Part 3.
		"| keepalived, odd | 17 | 1111 | 2222 | 3333 | 4444 | 2031-02-02 01:02 UTC |",
		"| Usher, odd | not measured | | | | | |",
		// Part 4.
		"(nothing sleeps; 3 seeds took 47s of real time in all)",
		"against a farm of N = 7 and 31 equal nodes of capacity 1234",
		"a Poisson process of 8 new sessions per node per second (56/s for N = 7 and 248/s for N = 31 farm-wide), so a 250ms window holds 2 new sessions per node on average (14 and 62 farm-wide)",
		"the **staleness** under test (0.3s and 3s)",
		"| ≤ 2/N + 5% (7 nodes: 34%, 31 nodes: 11%) |",
		"| 31 | 3s | 1.031 (1.031–1.032) | met (margin 0.018) |",
		"![balance_share.png](docs/odd/balance_share.png)",
		// Part 5.
		"Clusters of 5 and 9 agent processes",
		"for each of 7777 new session IDs",
		"highest 1-minute average sampled between runs: 12.34",
		"| 5 | 2 of 2 | 2.0 (1.5–2.5) |",
		"At 5 agents an idle `fast` agent costs 0.071 cores",
		"so 9 agents would need 0.6 cores of this machine's 7",
		"5 agents (up to 3 in one repeat, while all agents together used 0.35 (0.35–0.36) cores) held elections after they had formed, on a machine of 7 cores.",
		"![scale_rss.png](docs/odd/scale_rss.png)",
		// Part 6.
		"it started 2031-04-05 06:07 UTC, with the load average (1, 5, 15 min) at 3.21 2.10 1.09 then and 4.32 3.21 2.10 at the end",
		"open 211 sessions/s throughout, each probing the balancer address and then keeping its server for 1.5 s",
		"for 61 s each",
		"The saturating floods are sent at 34568 datagrams/s, about the probe path's capacity on this machine (the flood farm cannot measure it itself, its limit being on: a closed loop from the client host gets 34568 probes/s answered).",
		"Acceptance, enforced (the run fails on a miss): at least 98% of the legitimate probes answered and a setup p99 within 3× the baseline's.",
		"| baseline | 0 | 12870 of 12871 (99.99%) | 12870 of 12875 (99.96%) | 1.2 | 6.5 | 12% | none | baseline |",
		"| one-source-odd | 34568 | 12001 of 12860 (93.32%) | 12001 of 14444 (83.09%) | 2.3 | 987.6 | 98% | probes_dropped{reason=rate_limited} 123456, tickets_refused 42 | fail: 83.09% of probes answered < 98% |",
		"- `one-source-odd`: odd requests from one source.",
	)
	// What the generator's prose said from earlier runs, or for one machine.
	for _, stale := range []string{"0.5 µs", "2-core", "N = 10", "N = 50", "200 KiB", "2026-11-27", "0.44x", "15.8 µs", "1e79a5a", "docs/bench/probe"} {
		if strings.Contains(out, stale) {
			t.Errorf("report says %q, which oddReport does not", stale)
		}
	}
}

// proseAllowed are the digit sequences the report's prose may hold outside
// its format verbs, each with where it comes from. Every other number the
// report prints must come from the run (a format verb fed by benchReport)
// or from a named constant of the code.
var proseAllowed = []struct{ text, why string }{
	{"## 6. ", "part number"}, {"## 1. ", "part number"}, {"## 2. ", "part number"}, {"## 3. ", "part number"}, {"## 4. ", "part number"}, {"## 5. ", "part number"},
	{"part 1 ", "part number"}, {"part 5:", "part number"},
	{"127.0.0.1", "the loopback address every part runs on"},
	{"1, 5, 15 min", "/proc/loadavg's three averages"},
	{"1-minute", "/proc/loadavg's first average"},
	{"2006-01-02 15:04 UTC", "Go's reference time, a layout"},
	{"CRC-32", "the name of STUN's fingerprint checksum"},
	{"300 Try Alternate", "STUN's error code for a redirect"},
	{"up to 16 at a time", "internal/udpio/raw_linux.go rawGroup (unexported)"},
	{"10 ms time slice", "the Go runtime's forcePreemptNS"},
	{"198.18.0.0/15", "the chaos farm's address block, e2e/doc.go"},
	{"198.19.0.0/16", "e2e/flood_gen_test.go spoofBlock, the flood's sources"},
	{"every 5 ms by the same prober", "e2e/chaos_test.go probeEvery"},
	{"nice -5", "packaging/usher.service Nice=, e2e/chaos_busy_test.go packagedNice"},
	{"USHER_BENCH_KEEPALIVED=1 go test -count=1", "the command that measures keepalived"},
	{"VRRP advert_int 1 s", "e2e/keepalived_test.go, keepalived's default advertisement"},
	{"VRRP advert_int 0.1 s", "e2e/keepalived_test.go, the tuned advertisement"},
	{"every 30 s", "cluster/doc.go metaEvery (unexported)"},
	{"one agent (bootstrap_expect 1", "sessionRun starts a cluster of one"},
	{"1 agent, 0 sessions", "the RSS plot's category for sessionRun's one agent before the sessions"},
	{"1 agent, ", "sessionRun's one agent, in the RSS plot"},
	{"GODEBUG=gctrace=1", "the setting that makes the runtime report its heap"},
	{"(0 sessions)", "the session run's first reading, by definition"},
	{"| | 0 sessions |", "the session table's first column, by definition"},
	{"RSS at 0)", "the session run's first reading, by definition"},
	{"| sessions counted by the agent | 0 |", "the session run's first reading, by definition"},
	{"| allocations per probe | 0 |", "the allocation goal's bound"},
	{"every serving mode) | 0 |", "the allocation goal's bound"},
	{"during the window | 0 |", "the election goal's bound"},
	{"max/mean − 1", "the imbalance, by definition"},
	{"keepalived-1s-netns.json", "a results file's name, which the report does not print"},
	{"keepalived-100ms-netns.json", "a results file's name, which the report does not print"},
	{"keepalived-busy-1s-netns.json", "a results file's name, which the report does not print"},
	{"keepalived-busy-100ms-netns.json", "a results file's name, which the report does not print"},
	{"each writes 16 MiB, then fsyncs", "e2e/neighbours_test.go, the writers' block"},
	{"USHER_BENCH_KEEPALIVED=1 USHER_CHAOS_BUSY=10m go test -count=1", "the command that measures keepalived's busy variants"},
	{"USHER_CHAOS_BUSY=10m", "scripts/chaos.sh's busy watch, the command that measures it"},
}

// reportFuncs are the functions, beyond those that write into a
// *strings.Builder, whose strings end up in the report or its plots.
var reportFuncs = []string{"row", "probeGoals", "allocRow", "oursInTail", "lossSummary", "percents", "balanceVerdict",
	"metVerdict", "balanceStaleLabel", "label", "rowLabel", "fmtRatio", "joinWords", "joinInts", "plot", "readFailoverRow"}

// reportVars are the package variables whose strings the report prints.
var reportVars = []string{"failoverRows", "busyRows", "serverLabels", "scaleLogPatterns"}

// verbRE matches a fmt verb; numberRE a number not glued to a word before
// it (p99, ipv4 and v1 are names, 256-byte and 30m are not).
var (
	verbRE   = regexp.MustCompile(`%[-+# 0]*(\[\d+\])?(\d+|\*)?(\.(\d+|\*)?)?[a-zA-Z%]`)
	numberRE = regexp.MustCompile(`(^|[^A-Za-z0-9_.])(\d+(\.\d+)*)`)
)

// reportStrings returns every string literal of the report's functions
// and variables in the bench's source files, by position, and the prose of
// every report template, by file; names are the reportFuncs and reportVars
// it found.
func reportStrings(t *testing.T) (lits map[string]string, names map[string]bool) {
	t.Helper()
	files, err := filepath.Glob("bench*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	lits, names = map[string]string{}, map[string]bool{}
	collect := func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				s, err := strconv.Unquote(bl.Value)
				if err != nil {
					t.Fatalf("%v: %v", fset.Position(bl.Pos()), err)
				}
				lits[fset.Position(bl.Pos()).String()] = s
			}
			return true
		})
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if slices.Contains(reportFuncs, d.Name.Name) || takesBuilder(d) {
					names[d.Name.Name] = true
					collect(d)
				}
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					if vs, ok := sp.(*ast.ValueSpec); ok && slices.Contains(reportVars, vs.Names[0].Name) {
						names[vs.Names[0].Name] = true
						collect(vs)
					}
				}
			}
		}
	}
	prose, err := filepath.Glob(filepath.Join("report", "*.tmpl"))
	if err != nil || len(prose) == 0 {
		t.Fatalf("no report templates: %v", err)
	}
	for _, name := range prose {
		text, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// A template's actions name the run's figures; the rest is prose.
		lits[name] = actionRE.ReplaceAllString(string(text), " ")
	}
	return lits, names
}

// actionRE matches a template action, such as {{printf "%.0f" .P99}}.
var actionRE = regexp.MustCompile(`(?s)\{\{.*?\}\}`)

// takesBuilder reports whether fn has a *strings.Builder parameter: it
// writes report text.
func takesBuilder(fn *ast.FuncDecl) bool {
	for _, p := range fn.Type.Params.List {
		if st, ok := p.Type.(*ast.StarExpr); ok {
			if sel, ok := st.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Builder" {
				return true
			}
		}
	}
	return false
}

// proseNumbers returns the numbers in s outside its format verbs and the
// allowed texts, each with some context, and marks the allowed texts it
// used.
func proseNumbers(s string, used map[string]bool) []string {
	s = verbRE.ReplaceAllString(s, "")
	for _, a := range proseAllowed {
		if strings.Contains(s, a.text) {
			used[a.text] = true
			s = strings.ReplaceAll(s, a.text, " ")
		}
	}
	var out []string
	for _, m := range numberRE.FindAllStringSubmatchIndex(s, -1) {
		a, b := max(0, m[4]-30), min(len(s), m[5]+30)
		out = append(out, fmt.Sprintf("%q in …%s…", s[m[4]:m[5]], s[a:b]))
	}
	return out
}

// TestReportProseNumbers scans the report's source for numbers typed into
// its prose: a figure must come from the run, through a format verb, or be
// one of proseAllowed, which says where it comes from.
func TestReportProseNumbers(t *testing.T) {
	lits, names := reportStrings(t)
	for _, n := range append(slices.Clone(reportFuncs), reportVars...) {
		if !names[n] {
			t.Errorf("no function or variable %s in the bench's files: update reportFuncs or reportVars", n)
		}
	}
	used := map[string]bool{}
	var pos []string
	for p := range lits {
		pos = append(pos, p)
	}
	slices.Sort(pos)
	for _, p := range pos {
		for _, n := range proseNumbers(lits[p], used) {
			t.Errorf("%s: number %s: take it from the run or a constant, or add it to proseAllowed with its source", p, n)
		}
	}
	for _, a := range proseAllowed {
		if !used[a.text] {
			t.Errorf("proseAllowed has %q (%s), which no report text holds any more", a.text, a.why)
		}
	}
}

// TestProseNumbersFinds checks the scanner itself on texts it must and
// must not flag.
func TestProseNumbersFinds(t *testing.T) {
	for _, tt := range []struct {
		text string
		want int
	}{
		{"about 0.5 µs warm", 1},
		{"any 2-core box", 1},
		{"session_ttl 30m", 1},
		{"from 0.86x to 1.01x", 2},
		{"on 2026-11-27 the part", 3},
		{"%d probes at %.1f%% load, %v late", 0},
		{"50%% and 90%%", 2},
		{"p99, p2c, ipv4, /v1/status, e2e", 0},
		{"## 1. Probe path on 127.0.0.1", 0},
	} {
		if got := proseNumbers(tt.text, map[string]bool{}); len(got) != tt.want {
			t.Errorf("%q: found %v, want %d numbers", tt.text, got, tt.want)
		}
	}
}

// TestProbeGoals checks every goal of part 1 both ways: figures that meet
// it give "met", figures that miss it "**not met**".
func TestProbeGoals(t *testing.T) {
	for i, name := range []string{
		"usher batched ÷ batched echo, probes/s at saturation",
		"usher batched ÷ batched echo, CPU per answer",
		"usher ÷ plain echo, probes/s at saturation",
		"usher ÷ plain echo, p99 at 50% load",
		"usher batched ÷ batched echo, p99 at 50% load",
	} {
		// ours = baseline × bound × k: above the bound, then below it.
		for _, k := range []float64{1.02, 0.98} {
			r := oddReport()
			g := probeGoals(r.Probe)[i]
			if g.what != name {
				t.Fatalf("goal %d is %q, want %q", i, g.what, name)
			}
			base, ours := r.Probe[g.pair[0]], r.Probe[g.pair[1]]
			switch {
			case strings.Contains(name, "probes/s"):
				ours.Rate = scale(base.Rate, g.bound*k)
			case strings.Contains(name, "CPU"):
				ours.CPU = scale(base.CPU, g.bound*k)
			default:
				ours.P99[g.level] = scale(base.P99[g.level], g.bound*k)
			}
			want := "| met |"
			if g.atMost == (k > 1) {
				want = "| **not met** |"
			}
			row := fmt.Sprintf("| %s | ", name)
			out := render(r)
			i := strings.Index(out, row)
			if i < 0 {
				t.Fatalf("no row %q", row)
			}
			if line, _, _ := strings.Cut(out[i:], "\n"); !strings.HasSuffix(line, want) {
				t.Errorf("ours = baseline × bound × %g: %s, want it to end %s", k, line, want)
			}
		}
	}
}

// TestAllocRow checks the allocation goal: met only when no serving mode
// allocates.
func TestAllocRow(t *testing.T) {
	for _, tt := range []struct {
		lines []string
		err   string
		want  string
	}{
		{[]string{"BenchmarkA-2 10 100 ns/op 0 B/op 0 allocs/op", "BenchmarkB-2 10 100 ns/op 0 B/op 0 allocs/op"}, "", "| 0 | 0 | met |"},
		{[]string{"BenchmarkA-2 10 100 ns/op 8 B/op 1 allocs/op", "BenchmarkB-2 10 100 ns/op 0 B/op 0 allocs/op"}, "", "| 0 | 1 | **not met** |"},
		{[]string{"BenchmarkA-2 10 100 ns/op 0 B/op 0 allocs/op", "BenchmarkB-2 10 100 ns/op 64 B/op 3 allocs/op"}, "", "| 0 | 3 | **not met** |"},
		{nil, "not run: no go toolchain on PATH", "| 0 | not measured | not measured |"},
	} {
		r := &benchReport{Allocs: allocFigures{Lines: tt.lines, Err: tt.err}}
		if got := r.allocRow(); !strings.HasSuffix(got, tt.want+"\n") {
			t.Errorf("%v %q: %q, want it to end %q", tt.lines, tt.err, got, tt.want)
		}
	}
}

// TestBalanceGoals checks part 4's verdicts both ways for each goal: the
// worst max/mean of least-loaded over the seeds and its largest window
// share, at and past their bounds.
func TestBalanceGoals(t *testing.T) {
	for _, tt := range []struct {
		name         string
		worst, share float64 // the worst seed's; the other seed is lower
		maxMean      string  // the verdict of the max/mean goal for 7 nodes
		shareVerdict string
	}{
		{"both met", balanceMaxMeanGoal - 0.004, balanceShareGoal(7) - 0.02, "met (margin 0.004)", "met (margin 2.0 points)"},
		{"at the bounds", balanceMaxMeanGoal, balanceShareGoal(7), "met (margin 0.000)", "met (margin 0.0 points)"},
		{"max/mean missed", balanceMaxMeanGoal + 0.007, balanceShareGoal(7) - 0.02, "**not met** (over by 0.007)", "met (margin 2.0 points)"},
		{"share missed", balanceMaxMeanGoal - 0.004, balanceShareGoal(7) + 0.031, "met (margin 0.004)", "**not met** (over by 3.1 points)"},
		{"both missed", balanceMaxMeanGoal + 0.2, balanceShareGoal(7) + 0.5, "**not met** (over by 0.200)", "**not met** (over by 50.0 points)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := oddBalance()
			ll := f.find(7, 300*time.Millisecond, "least-loaded")
			// The verdict is the worst seed's: the median is well within.
			ll.Worst = spread{1.001, tt.worst, 1.001}
			ll.Share = spread{0.2, tt.share, 0.2}
			var b strings.Builder
			f.write(&b, "")
			out := b.String()
			row := "| 7 | 0.3s | "
			i := strings.Index(out, row)
			if i < 0 {
				t.Fatalf("no row %q in\n%s", row, out)
			}
			line, _, _ := strings.Cut(out[i:], "\n")
			cells := strings.Split(line, " | ")
			if len(cells) < 6 || cells[3] != tt.maxMean || cells[5] != tt.shareVerdict {
				t.Errorf("row %s\nwant max/mean verdict %q and share verdict %q", line, tt.maxMean, tt.shareVerdict)
			}
			// The other rows, within both bounds, stay met.
			if n := strings.Count(out, "**not met**"); n != strings.Count(tt.maxMean+tt.shareVerdict, "**not met**") {
				t.Errorf("%d verdicts not met, want only this row's:\n%s", n, out)
			}
		})
	}
}

// TestScaleGoals checks part 5's verdicts both ways: the RSS with the
// sessions, formation and elections in the window.
func TestScaleGoals(t *testing.T) {
	f := oddScale()
	var b strings.Builder
	f.write(&b, "", 7)
	reportHas(t, b.String(), "odd scale section",
		"| agent RSS with 7777 tracked sessions | ≤ 100 MiB | 23.6 (23.5–23.6) MiB | met |",
		"| 5 agents join and agree on a leader within 42s | every repeat | 2 of 2 repeats | met |",
		"| 5 agents: no election during the window | 0 | 2 (0–3) | **not met** |",
		"| 9 agents join and agree on a leader within 42s | every repeat | 1 of 2 repeats | **not met** |",
		"| 9 agents, lan: no election during the window | 0 | 0 (0–0) | met |",
	)
	f.Sessions.RSS = spread{scaleRSSGoalMiB + 0.1, scaleRSSGoalMiB + 0.2}
	b.Reset()
	f.write(&b, "", 7)
	reportHas(t, b.String(), "scale section with a large agent", "| agent RSS with 7777 tracked sessions | ≤ 100 MiB | 100.2 (100.1–100.2) MiB | **not met** |")
}

// TestResultsRoundTrip checks that the results' JSON keeps every field of
// a run (oddReport sets them all) and that the report rendered from it is
// the report of the run, byte for byte.
// roundTripResults encodes r as the saved results, decodes them again and
// fails the test unless nothing changed; it returns the decoded results and
// their encoding.
func roundTripResults(t *testing.T, r *benchReport) (*benchReport, []byte) {
	t.Helper()
	raw, err := encodeResults(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeResults(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Errorf("the results changed through JSON:\n%+v\n%+v", r, back)
	}
	return back, raw
}

func TestResultsRoundTrip(t *testing.T) {
	r := oddReport()
	if zero := zeroFields(reflect.ValueOf(r).Elem(), "benchReport"); len(zero) > 0 {
		t.Fatalf("oddReport leaves fields unset, which the round trip then does not cover: %v", zero)
	}
	back, raw := roundTripResults(t, r)
	if a, b := render(r), render(back); a != b {
		t.Errorf("the report from the JSON differs from the run's:\n%s", firstDiff(a, b))
	}
	raw2, err := encodeResults(back)
	if err != nil || !bytes.Equal(raw, raw2) {
		t.Errorf("encoding the decoded results again changed them (%v)", err)
	}

	for _, bad := range []string{
		strings.Replace(string(raw), `"schema": 1`, `"schema": 2`, 1),
		strings.Replace(string(raw), `"cores": 7`, `"cores": 7, "kores": 8`, 1),
		string(raw[:len(raw)/2]),
	} {
		if _, err := decodeResults([]byte(bad)); err == nil {
			t.Errorf("decodeResults took bad results (%d bytes)", len(bad))
		}
	}
}

// zeroFields returns the paths of the fields under v that are zero (or
// empty) everywhere: in a slice or map, a field counts as set if any
// element sets it. It descends into structs, pointers, slices and maps.
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			if t.IsZero() {
				return []string{path}
			}
			return nil
		}
		var out []string
		for i := range v.NumField() {
			switch name := v.Type().Field(i).Name; name {
			case "Err", "ProxyErr", "ScaleErr", "AttackErr":
				// Set only when a part fails: TestFailedParts has them.
			default:
				out = append(out, zeroFields(v.Field(i), path+"."+name)...)
			}
		}
		return out
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		var elems []reflect.Value
		if v.Kind() == reflect.Map {
			for it := v.MapRange(); it.Next(); {
				elems = append(elems, it.Value())
			}
		} else {
			for i := range v.Len() {
				elems = append(elems, v.Index(i))
			}
		}
		zero := zeroFields(elems[0], path+"[]")
		for _, e := range elems[1:] {
			zero = slices.DeleteFunc(zero, func(p string) bool { return !slices.Contains(zeroFields(e, path+"[]"), p) })
		}
		return zero
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// TestFailedParts renders a run whose proxy and scale parts failed and
// whose allocations did not run, through the JSON.
func TestFailedParts(t *testing.T) {
	r := oddReport()
	r.Proxy, r.ProxyErr = nil, "nginx: odd failure"
	r.Scale, r.ScaleErr = nil, "scale: odd failure"
	r.Attack, r.AttackErr = nil, "odd: not measured"
	r.Allocs = allocFigures{Command: "go test", Err: "not run: odd"}
	back, _ := roundTripResults(t, r)
	out := render(back)
	if out != render(r) {
		t.Errorf("the report from the JSON differs from the run's:\n%s", firstDiff(render(r), out))
	}
	reportHas(t, out, "report of failed parts",
		"## 2. Session setups against an in-path proxy\n\nNot measured: nginx: odd failure\n",
		"## 5. Scale\n\nNot measured: scale: odd failure\n",
		"## 6. Under attack\n\nNot measured: odd: not measured\n",
		"### Allocations\n\nnot run: odd\n",
		"| allocations per probe | 0 | not measured | not measured |",
		"BenchmarkResponderAnswer` below times alone (STUN decoding with the request's CRC-32 fingerprint, the SipHash ticket MAC, the least-loaded pick with two backups, the hand-written answer with its own fingerprint): not timed in this run.",
	)
}

// TestSpreadJSON checks that measurements JSON has no number for survive
// the results.
func TestSpreadJSON(t *testing.T) {
	in := spread{1.5, math.NaN(), math.Inf(1), math.Inf(-1), 0, 1e-300}
	raw, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `[1.5,"NaN","+Inf","-Inf",0,1e-300]`; string(raw) != want {
		t.Errorf("encoded %s, want %s", raw, want)
	}
	var out spread
	if err := out.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || !math.IsNaN(out[1]) || !math.IsInf(out[2], 1) || !math.IsInf(out[3], -1) || out[0] != 1.5 || out[5] != 1e-300 {
		t.Errorf("decoded %v, want %v", out, in)
	}
	for _, bad := range []string{`["1.5"]`, `{}`, `[true]`} {
		if err := out.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
	var none spread
	if err := none.UnmarshalJSON([]byte("null")); err != nil || none != nil {
		t.Errorf("null: %v, %v", none, err)
	}
}

// TestRenderCommand runs `usher-bench -render` on saved results: it must
// write the report the results render to, and the plots, and measure
// nothing.
func TestRenderCommand(t *testing.T) {
	dir := t.TempDir()
	r := oddReport()
	r.PlotDir, r.ResultsFile = filepath.Join(dir, "plots"), filepath.Join(dir, "plots", "results.json")
	raw, err := encodeResults(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.PlotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.ResultsFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "REPORT.md")
	var stdout, stderr strings.Builder
	if code := runBench(t.Context(), []string{"-render", "-out", out, "-plots", r.PlotDir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := render(r); string(got) != want {
		t.Errorf("-render wrote another report:\n%s", firstDiff(want, string(got)))
	}
	for _, p := range append([]string{"probe_rate.png", "proxy_cpu.png", "balance_share.png"}, scalePlots...) {
		if st, err := os.Stat(filepath.Join(r.PlotDir, p)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", p, err)
		}
	}
	if after, err := os.ReadFile(r.ResultsFile); err != nil || !bytes.Equal(after, raw) {
		t.Errorf("-render changed the results (%v)", err)
	}
	if code := runBench(t.Context(), []string{"-render", "-results", filepath.Join(dir, "none.json")}, &stdout, &stderr); code == 0 {
		t.Error("-render of missing results succeeded")
	}
}

// TestCommittedReport renders the committed results and compares the
// outcome with the committed BENCHMARKS.md, byte for byte: the report is
// the generator's alone, and a hand edit of it fails here. After a change
// to the report's wording, `go run ./cmd/usher-bench -render` writes it
// again.
func TestCommittedReport(t *testing.T) {
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "docs", "bench", "results.json"))
	if os.IsNotExist(err) {
		t.Skip("docs/bench/results.json is absent: BENCHMARKS.md predates saved results (its per-repeat figures were never kept); the next `make bench` writes both")
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeResults(raw)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := render(r); string(md) != want {
		t.Errorf("BENCHMARKS.md is not the render of docs/bench/results.json (edited by hand, or the generator changed: run `go run ./cmd/usher-bench -render`):\n%s", firstDiff(want, string(md)))
	}
}

// firstDiff describes the first line where got differs from want.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant %q\n got %q", i+1, w, g)
		}
	}
	return "no difference"
}

// TestWriteAnswerCosts checks the answer-cost table: medians of each
// benchmark's runs, ratios to the Usher probe's, benchmarks missing from
// the run left out.
func TestWriteAnswerCosts(t *testing.T) {
	r := &benchReport{Answers: allocFigures{Command: "go test", Lines: []string{
		"BenchmarkResponderAnswer-2 100000 300 ns/op 0 B/op 0 allocs/op",
		"BenchmarkResponderAnswer-2 100000 310 ns/op 0 B/op 0 allocs/op",
		"BenchmarkResponderAnswer-2 100000 900 ns/op 0 B/op 0 allocs/op",
		"BenchmarkResponderStrictAllocate-2 100000 3100 ns/op 1056 B/op 17 allocs/op",
	}}}
	var b strings.Builder
	r.writeAnswerCosts(&b)
	for _, want := range []string{
		"| Usher probe, default service (the baseline) | `BenchmarkResponderAnswer` | 310 | 1.00x | 0 |",
		"| strict mode: credentials checked, signed 300 | `BenchmarkResponderStrictAllocate` | 3100 | 10.00x | 17 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "StockBinding") {
		t.Errorf("a benchmark not run is in the table:\n%s", b.String())
	}
}

// TestReadAttack reads part 6 from a fixture of the flood scenario's
// results file (extra fields and all) and renders it; a directory without
// the file, or with a file without flood figures, says why.
func TestReadAttack(t *testing.T) {
	a, why := readAttack("testdata")
	if a == nil {
		t.Fatalf("readAttack(testdata): %s", why)
	}
	if a.Started != "2031-04-05T06:07:08.123Z" || a.LoadEnd != "4.32 3.21 2.10" || len(a.Windows) != 2 || !a.Strict {
		t.Fatalf("readAttack(testdata) = %+v", a)
	}
	r := oddReport()
	r.Attack = a
	reportHas(t, render(r), "part 6 from the fixture",
		"it started 2031-04-05 06:07 UTC",
		"| one-source-odd | 34568 | 12001 of 12860 (93.32%) | 12001 of 14444 (83.09%) | 2.3 | 987.6 | 98% | probes_dropped{reason=rate_limited} 123456, tickets_refused 42 | fail: 83.09% of probes answered < 98% |",
	)
	for name, body := range map[string]string{"absent": "", "empty": `{"scenario": "flood"}`, "broken": `{"flood": [`} {
		dir := t.TempDir()
		if body != "" {
			if err := os.WriteFile(filepath.Join(dir, attackFile), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if a, why := readAttack(dir); a != nil || why == "" {
			t.Errorf("%s: readAttack = %+v, %q; want no figures and a reason", name, a, why)
		}
	}
}
