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
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usherlb/usher/node"
)

// benchOpts are the knobs of one `usher bench` run.
type benchOpts struct {
	quick    bool
	repeats  int
	duration time.Duration
	parts    map[string]bool
	exe      string // this binary, to start the servers from
	args     []string
	log      io.Writer
}

// runBench implements `usher bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "[-quick] [-out FILE] [-plots DIR] [-parts LIST]",
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

Failover against keepalived (part 3) is read from the chaos suite's
results in e2e/results (run scripts/chaos.sh as root to measure it).

Every figure is the median, min and max over repeated runs, and every
headline is a ratio against a baseline measured next to it in the same run.
The load generator only targets 127.0.0.0/8.`, stderr)
	quick := fs.Bool("quick", false, "a short run (about five minutes): fewer repeats, shorter measurements, smaller clusters")
	out := fs.String("out", "BENCHMARKS.md", "the report to write")
	plots := fs.String("plots", filepath.Join("docs", "bench"), "the directory for the PNG plots")
	parts := fs.String("parts", "probe,proxy,balance,scale", "comma-separated parts to run: probe, proxy, balance, scale")
	repeats := fs.Int("repeats", 0, "runs of each measurement (0: 7, or 3 with -quick)")
	duration := fs.Duration("duration", 0, "length of one measurement (0: 2s, or 500ms with -quick)")
	serve := fs.String("serve", "", "internal: run one benchmark server and print its address")
	targets := fs.String("targets", "", "with -serve: comma-separated server addresses Usher redirects to")
	cpuProfile := fs.String("cpuprofile", "", "with -serve: write the server's CPU profile to this file")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *serve != "" {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				fmt.Fprintf(stderr, "usher bench: %v\n", err)
				return 1
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintf(stderr, "usher bench: %v\n", err)
				return 1
			}
			defer pprof.StopCPUProfile()
		}
		var ts []netip.AddrPort
		for t := range strings.SplitSeq(*targets, ",") {
			if t == "" {
				continue
			}
			a, err := netip.ParseAddrPort(t)
			if err != nil {
				fmt.Fprintf(stderr, "usher bench: -targets: %v\n", err)
				return 2
			}
			ts = append(ts, a)
		}
		if err := runBenchServer(*serve, ts, os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "usher bench: %v\n", err)
			return 1
		}
		return 0
	}
	o := benchOpts{quick: *quick, repeats: *repeats, duration: *duration, parts: map[string]bool{}, args: args, log: stderr}
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
	for p := range strings.SplitSeq(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "probe", "proxy", "balance", "scale":
			o.parts[p] = true
		case "":
		default:
			fmt.Fprintf(stderr, "usher bench: unknown part %q\n", p)
			return 2
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "usher bench: %v\n", err)
		return 1
	}
	o.exe = exe

	rep := &benchReport{started: time.Now(), opts: o, loadStart: loadAvg()}
	if o.parts["probe"] {
		if rep.probe, err = benchProbePath(ctx, o); err != nil {
			fmt.Fprintf(stderr, "usher bench: probe path: %v\n", err)
			return 1
		}
		rep.allocs = benchAllocs(ctx, o)
	}
	if o.parts["proxy"] {
		rep.proxy, err = benchProxy(ctx, o)
		if err != nil {
			fmt.Fprintf(stderr, "usher bench: proxy: %v\n", err)
			rep.proxyErr = err
		}
	}
	if o.parts["balance"] {
		if rep.balance, err = benchBalance(ctx, o); err != nil {
			fmt.Fprintf(stderr, "usher bench: balance: %v\n", err)
			return 1
		}
	}
	if o.parts["scale"] {
		rep.scale, err = benchScale(ctx, o)
		if err != nil {
			fmt.Fprintf(stderr, "usher bench: scale: %v\n", err)
			rep.scaleErr = err
		}
	}
	rep.finished, rep.loadEnd = time.Now(), loadAvg()
	if err := os.MkdirAll(*plots, 0o755); err != nil {
		fmt.Fprintf(stderr, "usher bench: %v\n", err)
		return 1
	}
	rep.plots, err = rep.plot(*plots)
	if err != nil {
		fmt.Fprintf(stderr, "usher bench: plots: %v\n", err)
		return 1
	}
	var b strings.Builder
	rep.write(&b, *out)
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "usher bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %d plots in %s (%s)\n", *out, len(rep.plots), *plots, rep.finished.Sub(rep.started).Round(time.Second))
	return 0
}

// probeFigures are the probe-path measurements of one server.
type probeFigures struct {
	rate, cpu spread          // probes/s at saturation; server CPU ns per answer
	p50, p99  map[int]spread  // by load percent: latency in µs
	lost      map[int]spread  // by load percent: fraction unanswered
	offered   map[int]float64 // by load percent: probes/s offered
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
		figs[n] = &probeFigures{p50: map[int]spread{}, p99: map[int]spread{}, lost: map[int]spread{}, offered: map[int]float64{}}
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
				figs[name].rate = append(figs[name].rate, res.rate)
				figs[name].cpu = append(figs[name].cpu, float64(res.cpu.Nanoseconds()))
				fmt.Fprintf(o.log, "saturation %d/%d %-12s %9.0f probes/s %6.2f µs CPU/probe\n", r+1, o.repeats, name, res.rate, float64(res.cpu.Nanoseconds())/1e3)
			}
		}
	}
	for _, pair := range probePairs {
		sat := min(figs[pair[0]].rate.median(), figs[pair[1]].rate.median())
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
					f.offered[lvl] = rate
					f.p50[lvl] = append(f.p50[lvl], float64(res.p50.Nanoseconds())/1e3)
					f.p99[lvl] = append(f.p99[lvl], float64(res.p99.Nanoseconds())/1e3)
					f.lost[lvl] = append(f.lost[lvl], res.lost)
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
func withServers[T any](exe string, names []string, f func([]*benchServer) (T, error)) (T, error) {
	var zero T
	ss := make([]*benchServer, 0, len(names))
	defer func() {
		for _, s := range ss {
			s.stop()
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
	command string
	lines   []string // the benchmark result lines
	err     error
}

// benchAllocs runs the node package's serving benchmarks, which count
// allocations per probe on both ends, when the source and a Go toolchain
// are at hand.
func benchAllocs(ctx context.Context, o benchOpts) allocFigures {
	args := []string{"test", "-run", "^$", "-bench", "ResponderServe|ResponderAnswer", "-benchmem", "-benchtime", "50000x", "./node/"}
	a := allocFigures{command: "go " + strings.Join(args, " ")}
	if _, err := os.Stat("node/responder.go"); err != nil {
		a.err = errors.New("not run: the Usher source is not in the working directory")
		return a
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		a.err = errors.New("not run: no go toolchain on PATH")
		return a
	}
	fmt.Fprintf(o.log, "running %s\n", a.command)
	out, err := exec.CommandContext(ctx, goBin, args...).CombinedOutput()
	if err != nil {
		a.err = fmt.Errorf("%s: %w\n%s", a.command, err, out)
		return a
	}
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			a.lines = append(a.lines, strings.Join(strings.Fields(l), " "))
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
