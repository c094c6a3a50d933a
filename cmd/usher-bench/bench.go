//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usherlb/usher/node"
)

// benchOpts are the knobs of one `usher-bench` run.
type benchOpts struct {
	quick    bool
	repeats  int
	duration time.Duration
	parts    map[string]bool
	exe      string // this binary, to start the servers from
	usher    string // the usher binary, to start the agents from
	args     []string
	log      io.Writer
}

// runBench implements `usher-bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("[-quick] [-out FILE] [-plots DIR] [-results FILE] [-parts LIST] | -render",
		`Measure Usher against its anchors on this machine, in one run, and write
the figures to a Markdown report and PNG plots:

  probe     the probe responder against a plain and a batched Go UDP echo
  proxy     session setups through nginx's UDP stream proxy and through
            Usher's redirect (installs nginx with apt-get when missing)
  balance   balance quality of every assignment policy and of coturn's
            round-robin redirect, in a simulation (10 and 50 nodes, stale
            load reports, heavy-tailed sessions)
  scale     16, 64 and 128 agents on loopback: join and leader agreement
            time, view staleness, gossip traffic, memory with 100,000
            sessions

Failover against keepalived (part 3) and the probe path under attack
(part 6) are read from the chaos suite's results in e2e/results (run
scripts/chaos.sh and make flood as root to measure them).

The run's raw results are saved as JSON (-results), and the report is
rendered from them alone: -render writes the report and the plots again
from that file without measuring, after a change to the report's wording;
-render -chaos also reads parts 3 and 6 again from e2e/results, after the
chaos suite measured them, and saves them with the rest.

Every figure is the median, min and max over repeated runs, and every
headline is a ratio against a baseline measured next to it in the same run.
The load generator only targets 127.0.0.0/8.`, stderr)
	quick := fs.Bool("quick", false, "a short run (about five minutes): fewer repeats, shorter measurements, smaller clusters")
	out := fs.String("out", "BENCHMARKS.md", "the report to write")
	plots := fs.String("plots", filepath.Join("docs", "bench"), "the directory for the PNG plots")
	results := fs.String("results", "", "the run's raw results, written by a run and read by -render (default: results.json in the -plots directory)")
	render := fs.Bool("render", false, "write the report and the plots from -results instead of measuring")
	chaos := fs.Bool("chaos", false, "with -render: read parts 3 and 6 again from e2e/results, and save them in -results")
	parts := fs.String("parts", "probe,proxy,balance,scale", "comma-separated parts to run: probe, proxy, balance, scale")
	repeats := fs.Int("repeats", 0, "runs of each measurement (0: 7, or 3 with -quick)")
	duration := fs.Duration("duration", 0, "length of one measurement (0: 2s, or 500ms with -quick)")
	serve := fs.String("serve", "", "internal: run one benchmark server and print its address")
	targets := fs.String("targets", "", "with -serve: comma-separated server addresses Usher redirects to")
	cpuProfile := fs.String("cpuprofile", "", "with -serve: write the server's CPU profile to this file")
	usher := fs.String("usher", "", "the usher binary the scale part starts agents from (default: usher next to this binary)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *serve != "" {
		return serveBench(*serve, *targets, *cpuProfile, stdout, stderr)
	}
	if *results == "" {
		*results = filepath.Join(*plots, "results.json")
	}
	var rep *benchReport
	if *render {
		raw, err := os.ReadFile(*results)
		if err == nil {
			rep, err = decodeResults(raw)
		}
		if err != nil {
			fmt.Fprintf(stderr, "usher-bench: -render: %v\n", err)
			return 1
		}
		if *chaos {
			rep.readChaos()
		}
	} else {
		o := benchOpts{quick: *quick, repeats: *repeats, duration: *duration, parts: map[string]bool{}, usher: *usher, args: args, log: stderr}
		if code := o.complete(*parts, stderr); code >= 0 {
			return code
		}
		var err error
		if rep, err = measureBench(ctx, o); err != nil {
			fmt.Fprintf(stderr, "usher-bench: %v\n", err)
			return 1
		}
	}
	rep.PlotDir, rep.ResultsFile = *plots, *results
	n, err := saveBench(rep, *out, *results, !*render || *chaos)
	if err != nil {
		fmt.Fprintf(stderr, "usher-bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s, %s and %d plots in %s (a run of %s)\n", *out, *results, n, *plots, rep.Finished.Sub(rep.Started).Round(time.Second))
	return 0
}

// serveBench runs `usher-bench -serve NAME`: one benchmark server in this
// process, for the parent's measurements.
func serveBench(name, targets, cpuProfile string, stdout, stderr io.Writer) int {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "usher-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "usher-bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	var ts []netip.AddrPort
	for t := range strings.SplitSeq(targets, ",") {
		if t == "" {
			continue
		}
		a, err := netip.ParseAddrPort(t)
		if err != nil {
			fmt.Fprintf(stderr, "usher-bench: -targets: %v\n", err)
			return 2
		}
		ts = append(ts, a)
	}
	if err := runBenchServer(name, ts, os.Stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "usher-bench: %v\n", err)
		return 1
	}
	return 0
}

// complete fills in o's defaults and parts (a comma-separated list) and
// finds this binary and the usher binary; it returns an exit code, or -1 to go on.
func (o *benchOpts) complete(parts string, stderr io.Writer) int {
	if o.repeats <= 0 {
		o.repeats = 7
		if o.quick {
			o.repeats = 3
		}
	}
	if o.duration <= 0 {
		o.duration = 2 * time.Second
		if o.quick {
			o.duration = 500 * time.Millisecond
		}
	}
	for p := range strings.SplitSeq(parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "probe", "proxy", "balance", "scale":
			o.parts[p] = true
		case "":
		default:
			fmt.Fprintf(stderr, "usher-bench: unknown part %q\n", p)
			return 2
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "usher-bench: %v\n", err)
		return 1
	}
	o.exe = exe
	if o.usher == "" {
		o.usher = filepath.Join(filepath.Dir(exe), "usher")
	}
	if _, err := os.Stat(o.usher); err != nil && o.parts["scale"] {
		fmt.Fprintf(stderr, "usher-bench: the scale part starts agents of the usher binary: %v (build it with make build, or name it with -usher)\n", err)
		return 1
	}
	return -1
}

// measureBench runs the parts o names and returns their results with the
// machine's description. A part that cannot run at all (the probe path,
// the balance simulation) is an error; proxy and scale failures are
// findings the report states.
func measureBench(ctx context.Context, o benchOpts) (*benchReport, error) {
	rep := &benchReport{Schema: resultsSchema, Started: time.Now(), Args: o.args, Repeats: o.repeats, Duration: o.duration,
		Machine: machine(), Cores: runtime.NumCPU(), LoadStart: loadAvg(), RcvBuf: rcvBufDefault()}
	var err error
	if o.parts["probe"] {
		if rep.Probe, err = benchProbePath(ctx, o); err != nil {
			return nil, fmt.Errorf("probe path: %w", err)
		}
		rep.Allocs = benchAllocs(ctx, o)
		rep.Answers = benchAnswers(ctx, o)
	}
	if o.parts["proxy"] {
		if rep.Proxy, err = benchProxy(ctx, o); err != nil {
			fmt.Fprintf(o.log, "usher-bench: proxy: %v\n", err)
			rep.ProxyErr = err.Error()
		}
	}
	rep.readChaos()
	if o.parts["balance"] {
		if rep.Balance, err = benchBalance(ctx, o); err != nil {
			return nil, fmt.Errorf("balance: %w", err)
		}
	}
	if o.parts["scale"] {
		if rep.Scale, err = benchScale(ctx, o); err != nil {
			fmt.Fprintf(o.log, "usher-bench: scale: %v\n", err)
			rep.ScaleErr = err.Error()
		}
	}
	rep.Finished, rep.LoadEnd = time.Now(), loadAvg()
	return rep, nil
}

// readChaos reads parts 3 and 6, which the chaos suite measures, from its
// results in e2e/results.
func (r *benchReport) readChaos() {
	r.Failover = readFailover(failoverDir)
	r.Busy = readBusy(failoverDir)
	r.Attack, r.AttackErr = readAttack(failoverDir)
}

// saveBench writes rep's report to out and its plots to rep.PlotDir, and
// with save its raw results to results; it returns how many plots it drew.
// The report and the plots are drawn from rep's JSON decoded again, so
// that what a run writes is exactly what -render writes from its results.
func saveBench(rep *benchReport, out, results string, save bool) (int, error) {
	raw, err := encodeResults(rep)
	if err != nil {
		return 0, err
	}
	if rep, err = decodeResults(raw); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(rep.PlotDir, 0o755); err != nil { //nolint:gosec // G301: the plots are published with the report
		return 0, err
	}
	files, err := rep.plot(rep.PlotDir)
	if err != nil {
		return len(files), fmt.Errorf("plots: %w", err)
	}
	if save {
		if err := os.WriteFile(results, raw, 0o644); err != nil { //nolint:gosec // G306: the results are published with the report
			return len(files), err
		}
	}
	var b strings.Builder
	rep.write(&b)
	return len(files), os.WriteFile(out, []byte(b.String()), 0o644) //nolint:gosec // G306: the report is for others to read
}

// probeFigures are the probe-path measurements of one server.
type probeFigures struct {
	Rate    spread          `json:"rate"`    // probes/s at saturation
	CPU     spread          `json:"cpu_ns"`  // server CPU ns per answer at saturation
	P50     map[int]spread  `json:"p50_us"`  // by load percent: latency in µs
	P99     map[int]spread  `json:"p99_us"`  // by load percent: latency in µs
	Lost    map[int]spread  `json:"lost"`    // by load percent: fraction unanswered
	Offered map[int]float64 `json:"offered"` // by load percent: probes/s offered
}

// loadLevels are the paced loads, in percent of saturation.
var loadLevels = []int{50, 90}

// probePairs pairs each baseline with the server measured against it.
var probePairs = [][2]string{{srvEcho, srvUsher}, {srvEchoBatch, srvUsherBatch}}

// benchProbePath measures every probe-path server: saturation first, each
// pair interleaved (the order flips every repeat), then paced loads at a
// share of the pair's lower median saturation, so both see the same load,
// with both servers of the pair running and taking turns every
// pacedSlice.
func benchProbePath(ctx context.Context, o benchOpts) (map[string]*probeFigures, error) {
	figs := map[string]*probeFigures{}
	for _, n := range benchServerNames {
		figs[n] = &probeFigures{P50: map[int]spread{}, P99: map[int]spread{}, Lost: map[int]spread{}, Offered: map[int]float64{}}
	}
	for r := range o.repeats {
		for _, pair := range probePairs {
			for _, name := range flip(pair, r) {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				res, err := withServer(o.exe, name, func(s *benchServer) (satResult, error) { return saturate(s, o.duration) })
				if err != nil {
					return nil, err
				}
				figs[name].Rate = append(figs[name].Rate, res.rate)
				figs[name].CPU = append(figs[name].CPU, float64(res.cpu.Nanoseconds()))
				fmt.Fprintf(o.log, "saturation %d/%d %-12s %9.0f probes/s %6.2f µs CPU/probe\n", r+1, o.repeats, name, res.rate, float64(res.cpu.Nanoseconds())/1e3)
			}
		}
	}
	for _, pair := range probePairs {
		sat := min(figs[pair[0]].Rate.median(), figs[pair[1]].Rate.median())
		for _, lvl := range loadLevels {
			rate := sat * float64(lvl) / 100
			for r := range o.repeats {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				names := flip(pair, r)
				res, err := withServers(o.exe, names, func(ss []*benchServer) ([]latResult, error) { return paced(ss, rate, o.duration) })
				if err != nil {
					return nil, err
				}
				for i, name := range names {
					f, res := figs[name], res[i]
					f.Offered[lvl] = rate
					f.P50[lvl] = append(f.P50[lvl], float64(res.p50.Nanoseconds())/1e3)
					f.P99[lvl] = append(f.P99[lvl], float64(res.p99.Nanoseconds())/1e3)
					f.Lost[lvl] = append(f.Lost[lvl], res.lost)
					fmt.Fprintf(o.log, "load %d%% %d/%d %-12s %9.0f probes/s p50 %6.1f µs p99 %7.1f µs lost %.4f\n",
						lvl, r+1, o.repeats, name, rate, float64(res.p50.Nanoseconds())/1e3, float64(res.p99.Nanoseconds())/1e3, res.lost)
				}
			}
		}
	}
	return figs, nil
}

// flip returns the pair in order on even repeats and reversed on odd ones,
// so neither side always runs first.
func flip(pair [2]string, r int) []string {
	if r%2 == 1 {
		return []string{pair[1], pair[0]}
	}
	return []string{pair[0], pair[1]}
}

// withServer starts the named server, runs f against it and stops it.
func withServer[T any](exe, name string, f func(*benchServer) (T, error)) (T, error) {
	return withServers(exe, []string{name}, func(ss []*benchServer) (T, error) { return f(ss[0]) })
}

// withServers starts the named servers, all at once, runs f against them
// and stops them.
func withServers[T any](exe string, names []string, f func([]*benchServer) (T, error)) (_ T, err error) {
	var zero T
	ss := make([]*benchServer, 0, len(names))
	defer func() {
		for _, s := range ss {
			err = errors.Join(err, s.stop())
		}
	}()
	for _, n := range names {
		s, err := startBenchServer(exe, n)
		if err != nil {
			return zero, err
		}
		ss = append(ss, s)
	}
	return f(ss)
}

// allocFigures is the outcome of the node package's serving benchmarks.
type allocFigures struct {
	Command string   `json:"command"`
	Lines   []string `json:"lines,omitempty"` // the benchmark result lines
	Err     string   `json:"error,omitempty"` // why there are none
}

// benchAllocs runs the node package's serving benchmarks, which count
// allocations per probe on both ends, when the source and a Go toolchain
// are at hand.
func benchAllocs(ctx context.Context, o benchOpts) allocFigures {
	return goBench(ctx, o, "^BenchmarkResponder(Serve|Answer)$", 1, "50000x")
}

// answerBenchmarks are the per-answer benchmarks of part 1's answer-cost
// table, each with what it answers, the Usher probe's first.
var answerBenchmarks = [][2]string{
	{"BenchmarkResponderAnswer", "Usher probe, default service (the baseline)"},
	{"BenchmarkResponderAnswerLimited", "Usher probe, default service, per-source limit checked (the agent's default)"},
	{"BenchmarkResponderAnswerService", "Usher probe naming a service (USHER-SERVICE), among four"},
	{"BenchmarkResponderStockAllocate", "stock TURN Allocate: unsigned 300"},
	{"BenchmarkResponderStockBinding", "stock STUN Binding: Binding success, no pick"},
	{"BenchmarkResponderStrictChallenge", "strict mode: 401 with REALM and NONCE"},
	{"BenchmarkResponderStrictAllocate", "strict mode: credentials checked, signed 300"},
}

// benchAnswers runs the per-answer benchmarks answerRuns times each, in one
// invocation, for the answer-cost table.
func benchAnswers(ctx context.Context, o benchOpts) allocFigures {
	names := make([]string, len(answerBenchmarks))
	for i, b := range answerBenchmarks {
		names[i] = strings.TrimPrefix(b[0], "Benchmark")
	}
	return goBench(ctx, o, "^Benchmark("+strings.Join(names, "|")+")$", answerRuns, "100000x")
}

// goBench runs the node package's benchmarks matching pattern, count times
// each, when the source and a Go toolchain are at hand.
func goBench(ctx context.Context, o benchOpts, pattern string, count int, benchtime string) allocFigures {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", strconv.Itoa(count), "-benchtime", benchtime, "./node/"}
	a := allocFigures{Command: "go " + strings.Join(args, " ")}
	if _, err := os.Stat("node/responder.go"); err != nil {
		a.Err = "not run: the Usher source is not in the working directory"
		return a
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		a.Err = "not run: no go toolchain on PATH"
		return a
	}
	fmt.Fprintf(o.log, "running %s\n", a.Command)
	out, err := exec.CommandContext(ctx, goBin, args...).CombinedOutput()
	if err != nil {
		a.Err = fmt.Sprintf("%s: %v\n%s", a.Command, err, out)
		return a
	}
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			a.Lines = append(a.Lines, strings.Join(strings.Fields(l), " "))
		}
	}
	return a
}

// machine describes the host for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	kernel := "unknown kernel"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s, %s %s/%s, usher %s",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH, node.Version)
}
