//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usherlb/usher/wire"
)

// benchReport is one run of `usher-bench`: every figure it measured and
// every fact about the machine the report states. It is saved as JSON
// (docs/bench/results.json by default) and the report is rendered from it
// alone, so `usher-bench -render` writes BENCHMARKS.md again, byte for
// byte, without measuring anything. Nothing the report prints may come
// from elsewhere than this struct and the code's own constants.
type benchReport struct {
	Schema      int           `json:"schema"` // resultsSchema
	Started     time.Time     `json:"started"`
	Finished    time.Time     `json:"finished"`
	Args        []string      `json:"args"`    // the command line after usher-bench
	Repeats     int           `json:"repeats"` // of each probe-path and proxy measurement
	Duration    time.Duration `json:"duration"`
	Machine     string        `json:"machine"`    // CPU, cores, kernel, Go and usher versions
	Cores       int           `json:"cores"`      // runtime.NumCPU
	LoadStart   string        `json:"load_start"` // /proc/loadavg's first three fields
	LoadEnd     string        `json:"load_end"`
	RcvBuf      int           `json:"rcvbuf"`       // net.core.rmem_default in bytes (0: unknown): the probe servers' receive buffer
	PlotDir     string        `json:"plot_dir"`     // where the plots are, for the report's links
	ResultsFile string        `json:"results_file"` // where this struct is saved, for the report's header

	Probe    map[string]*probeFigures `json:"probe,omitempty"`
	Allocs   allocFigures             `json:"allocs"`
	Answers  allocFigures             `json:"answers"`
	Proxy    *proxyFigures            `json:"proxy,omitempty"`
	ProxyErr string                   `json:"proxy_error,omitempty"`
	Failover []failoverFigures        `json:"failover"`
	Busy     []busyFigures            `json:"busy,omitempty"`
	Balance  *balanceFigures          `json:"balance,omitempty"`
	Scale    *scaleFigures            `json:"scale,omitempty"`
	ScaleErr string                   `json:"scale_error,omitempty"`
	// Attack is part 6, read from the flood scenario's results;
	// AttackErr says why it is missing.
	Attack    *attackFigures `json:"attack,omitempty"`
	AttackErr string         `json:"attack_error,omitempty"`
}

// resultsSchema is the version of benchReport's JSON; a file of another
// version is refused rather than rendered wrong.
const resultsSchema = 1

// loadAvg returns the 1, 5 and 15 minute load averages from /proc.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

// rcvBufDefault returns the kernel's default socket receive buffer
// (net.core.rmem_default) in bytes, or 0 if it cannot be read.
func rcvBufDefault() int {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_default")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}

// serverLabels names the probe-path servers in tables and plots.
var serverLabels = map[string]string{
	srvEcho:       "plain echo",
	srvUsher:      "usher",
	srvEchoBatch:  "batched echo",
	srvUsherBatch: "usher batched",
}

// plot draws the report's charts into dir and returns their file names.
func (r *benchReport) plot(dir string) ([]string, error) {
	var files []string
	add := func(name string, err error) error {
		if err == nil {
			files = append(files, name)
		}
		return err
	}
	if r.Probe != nil {
		var cats []string
		var rate, cpu []spread
		for _, n := range benchServerNames {
			cats = append(cats, serverLabels[n])
			rate = append(rate, scale(r.Probe[n].Rate, 1e-3))
			cpu = append(cpu, scale(r.Probe[n].CPU, 1e-3))
		}
		if err := add("probe_rate.png", barChart(filepath.Join(dir, "probe_rate.png"),
			"Probes answered per second at saturation (median, min–max)", "thousand probes/s", cats, []barSeries{{"", rate}})); err != nil {
			return files, err
		}
		if err := add("probe_cpu.png", barChart(filepath.Join(dir, "probe_cpu.png"),
			"Server CPU time per answered probe (median, min–max)", "µs CPU / probe", cats, []barSeries{{"", cpu}})); err != nil {
			return files, err
		}
		var series []barSeries
		for _, lvl := range loadLevels {
			s := barSeries{name: fmt.Sprintf("p99 at %d%% load", lvl)}
			for _, n := range benchServerNames {
				s.values = append(s.values, r.Probe[n].P99[lvl])
			}
			series = append(series, s)
		}
		if err := add("probe_latency.png", barChart(filepath.Join(dir, "probe_latency.png"),
			"p99 probe round trip under paced load (median, min–max)", "µs", cats, series)); err != nil {
			return files, err
		}
	}
	type plotter interface {
		plot(dir string) ([]string, error)
	}
	var parts []plotter
	if r.Proxy != nil {
		parts = append(parts, r.Proxy)
	}
	if r.Balance != nil {
		parts = append(parts, r.Balance)
	}
	if r.Scale != nil {
		parts = append(parts, r.Scale)
	}
	for _, p := range parts {
		pf, err := p.plot(dir)
		files = append(files, pf...)
		if err != nil {
			return files, err
		}
	}
	return files, nil
}

// scale multiplies every measurement by k.
func scale(s spread, k float64) spread {
	out := make(spread, len(s))
	for i, v := range s {
		out[i] = v * k
	}
	return out
}

// goal is one headline of part 1: a ratio against a baseline and its
// bound.
type goal struct {
	what   string
	ratio  spread
	bound  float64
	atMost bool      // the ratio must be at most bound (else at least)
	pair   [2]string // the baseline server and the one measured against it
	level  int       // for a paced goal, the load in percent; 0 for saturation
}

// met reports whether the median ratio is within the bound.
func (g goal) met() bool {
	if g.atMost {
		return g.ratio.median() <= g.bound
	}
	return g.ratio.median() >= g.bound
}

// row is the goal's line of the goals table.
func (g goal) row() string {
	op := "≥"
	if g.atMost {
		op = "≤"
	}
	return fmt.Sprintf("| %s | %s %.2fx | %s | %s |\n", g.what, op, g.bound, g.ratio.format("%.2fx"), metVerdict(g.met()))
}

// probeGoals are part 1's goals over the figures f; the paced ones hold
// at the lightest paced load.
func probeGoals(f map[string]*probeFigures) []goal {
	plain, batched := [2]string{srvEcho, srvUsher}, [2]string{srvEchoBatch, srvUsherBatch}
	lvl := loadLevels[0]
	ratio := func(pair [2]string, of func(*probeFigures) spread) spread {
		return ratios(of(f[pair[1]]), of(f[pair[0]]))
	}
	rate := func(p *probeFigures) spread { return p.Rate }
	cpu := func(p *probeFigures) spread { return p.CPU }
	p99 := func(p *probeFigures) spread { return p.P99[lvl] }
	return []goal{
		{what: "usher batched ÷ batched echo, probes/s at saturation", ratio: ratio(batched, rate), bound: 0.9, pair: batched},
		{what: "usher batched ÷ batched echo, CPU per answer", ratio: ratio(batched, cpu), bound: 1.1, atMost: true, pair: batched},
		{what: "usher ÷ plain echo, probes/s at saturation", ratio: ratio(plain, rate), bound: 0.85, pair: plain},
		{what: fmt.Sprintf("usher ÷ plain echo, p99 at %d%% load", lvl), ratio: ratio(plain, p99), bound: 1.1, atMost: true, pair: plain, level: lvl},
		{what: fmt.Sprintf("usher batched ÷ batched echo, p99 at %d%% load", lvl), ratio: ratio(batched, p99), bound: 1.1, atMost: true, pair: batched, level: lvl},
	}
}

// write writes the Markdown report.
func (r *benchReport) write(b *strings.Builder) {
	cmd := "usher-bench"
	if len(r.Args) > 0 {
		cmd += " " + strings.Join(r.Args, " ")
	}
	writeProse(b, "header", map[string]any{
		"Cmd": cmd, "R": r, "Warmup": warmup(r.Duration),
		"Started": r.Started.UTC().Format("2006-01-02 15:04 UTC"),
		"Took":    r.Finished.Sub(r.Started).Round(time.Second),
		"Results": filepath.ToSlash(r.ResultsFile),
	})
	if r.Probe != nil {
		r.writeProbe(b)
	}
	if r.Proxy != nil || r.ProxyErr != "" {
		r.writeProxy(b)
	}
	writeFailoverPart(b, r.Failover, r.Busy)
	if r.Balance != nil {
		r.Balance.write(b, r.PlotDir)
	}
	switch {
	case r.Scale != nil:
		r.Scale.write(b, r.PlotDir, r.Cores)
	case r.ScaleErr != "":
		fmt.Fprintf(b, "## 5. Scale\n\nNot measured: %s\n\n", r.ScaleErr)
	}
	r.writeAttack(b)
}

// writeProbe writes part 1.
func (r *benchReport) writeProbe(b *strings.Builder) {
	f := r.Probe
	b.WriteString("## 1. Probe path\n\n")
	r.writeProbeMethod(b)
	b.WriteString("### Goals\n\n| Goal | Bound | Measured (median, min–max) | |\n|---|---|---|---|\n")
	goals := probeGoals(f)
	for _, g := range goals {
		b.WriteString(g.row())
	}
	b.WriteString(r.allocRow())
	r.writeProbeMisses(b, goals)
	fmt.Fprintf(b, "\nFor scale: batched echo ÷ plain echo = %s probes/s; usher batched ÷ usher = %s probes/s (not interleaved pairs: medians of the runs).\n\n",
		fmtRatio(f[srvEchoBatch].Rate.median(), f[srvEcho].Rate.median()), fmtRatio(f[srvUsherBatch].Rate.median(), f[srvUsher].Rate.median()))
	decision := "not timed in this run"
	if ns, ok := answerNs(r.Allocs.Lines); ok {
		decision = fmt.Sprintf("%s ns warm in this run, and more between system calls, whose kernel work leaves the caches cold", strconv.FormatFloat(ns, 'f', -1, 64))
	}
	writeProse(b, "probe-where", decision)
	r.writeProbeTables(b)
}

// writeProbeMethod writes how part 1 measures: the servers, the load
// generator and what the paced runs lose.
func (r *benchReport) writeProbeMethod(b *strings.Builder) {
	buf := "its size unknown here"
	if r.RcvBuf > 0 {
		buf = fmt.Sprintf("%d KiB here, net.core.rmem_default", r.RcvBuf>>10)
	}
	writeProse(b, "probe-method", map[string]any{
		"ProbeSize": wire.ProbeSize, "FarmSize": fakeFarmSize, "FarmPublish": fakeFarmPublish,
		"Sockets": loadSockets, "Window": loadWindow, "LossAfter": loadLossAfter,
		"Slice": pacedSlice, "Tick": paceTick, "PacedSockets": pacedSockets,
		"Levels": joinWords(percents(loadLevels)), "TurnsPerSecond": int(time.Second / pacedSlice),
		"Buffer": buf, "Loss": r.lossSummary(),
	})
}

// lossSummary says how many probes the paced runs lost: the range of the
// servers' medians at each load.
func (r *benchReport) lossSummary() string {
	var parts []string
	for _, lvl := range loadLevels {
		var med spread
		for _, n := range benchServerNames {
			if l := r.Probe[n].Lost[lvl]; len(l) > 0 {
				med = append(med, 100*l.median())
			}
		}
		if len(med) > 0 {
			parts = append(parts, fmt.Sprintf("from %.2f%% to %.2f%% at %d%% load", med.min(), med.max(), lvl))
		}
	}
	if len(parts) == 0 {
		return "none measured"
	}
	return "the servers' medians run " + joinWords(parts)
}

// writeProbeTables writes part 1's tables, plots and allocations.
func (r *benchReport) writeProbeTables(b *strings.Builder) {
	f := r.Probe
	b.WriteString("### Saturation\n\n| Server | probes/s | server CPU per answer (µs) |\n|---|---|---|\n")
	for _, n := range benchServerNames {
		fmt.Fprintf(b, "| %s | %s | %s |\n", serverLabels[n], f[n].Rate.format("%.0f"), scale(f[n].CPU, 1e-3).format("%.2f"))
	}
	b.WriteString("\n### Latency under paced load\n\n| Server | load | offered probes/s | p50 (µs) | p99 (µs) | unanswered |\n|---|---|---|---|---|---|\n")
	for _, n := range benchServerNames {
		for _, lvl := range loadLevels {
			fmt.Fprintf(b, "| %s | %d%% | %.0f | %s | %s | %s |\n", serverLabels[n], lvl, f[n].Offered[lvl],
				f[n].P50[lvl].format("%.1f"), f[n].P99[lvl].format("%.1f"), scale(f[n].Lost[lvl], 100).format("%.2f%%"))
		}
	}
	b.WriteString("\n")
	for _, p := range []string{"probe_rate.png", "probe_cpu.png", "probe_latency.png"} {
		fmt.Fprintf(b, "![%s](%s)\n", p, filepath.ToSlash(filepath.Join(r.PlotDir, p)))
	}
	b.WriteString("\n### Allocations\n\n")
	if r.Allocs.Err != "" {
		fmt.Fprintf(b, "%s\n\n", r.Allocs.Err)
	} else {
		fmt.Fprintf(b, "`%s` (round trips on loopback through each serving mode, counting both ends; and the per-probe decision alone):\n\n```\n%s\n```\n\n",
			r.Allocs.Command, strings.Join(r.Allocs.Lines, "\n"))
	}
	r.writeAnswerCosts(b)
}

// answerRuns is how many times benchAnswers runs each benchmark.
const answerRuns = 5

// writeAnswerCosts writes the cost of each kind of answer the balancer
// address gives, as medians and as ratios to the Usher probe's, from one
// invocation.
func (r *benchReport) writeAnswerCosts(b *strings.Builder) {
	a := r.Answers
	if a.Err != "" || len(a.Lines) == 0 {
		return
	}
	ns, allocs := map[string][]float64{}, map[string]float64{}
	for _, l := range a.Lines {
		f := strings.Fields(l)
		name, _, _ := strings.Cut(f[0], "-")
		for i := 1; i < len(f); i++ {
			v, err := strconv.ParseFloat(f[i-1], 64)
			switch {
			case err != nil:
			case f[i] == "ns/op":
				ns[name] = append(ns[name], v)
			case f[i] == "allocs/op":
				allocs[name] = v
			}
		}
	}
	base := spread(ns[answerBenchmarks[0][0]]).median()
	fmt.Fprintf(b, "### Answer costs\n\nWhat each kind of answer costs the leader, per answer (`%s`, medians of %d runs, ratios to the Usher probe's in the same run):\n\n", a.Command, answerRuns)
	b.WriteString("| answer | benchmark | ns | × Usher probe | allocs |\n|---|---|---|---|---|\n")
	for _, bm := range answerBenchmarks {
		v, ok := ns[bm[0]]
		if !ok {
			continue
		}
		m := spread(v).median()
		fmt.Fprintf(b, "| %s | `%s` | %.0f | %s | %s |\n", bm[1], bm[0], m, fmtRatio(m, base), strconv.FormatFloat(allocs[bm[0]], 'f', -1, 64))
	}
	b.WriteString("\n")
}

// answerNs returns the ns/op of BenchmarkResponderAnswer among the
// benchmark result lines.
func answerNs(lines []string) (float64, bool) {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], "BenchmarkResponderAnswer-") {
			continue
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "ns/op" {
				v, err := strconv.ParseFloat(f[i-1], 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}

// percents formats each of ps as "50%".
func percents(ps []int) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%d%%", p)
	}
	return out
}

// joinWords joins "a", "b" and "c" as "a, b and c".
func joinWords(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// writeProbeMisses says, under part 1's goals, why each missed one misses:
// the spread of its per-repeat ratios and what drives it.
func (r *benchReport) writeProbeMisses(b *strings.Builder, goals []goal) {
	f := r.Probe
	var lines []string
	for _, g := range goals {
		if len(g.ratio) == 0 || g.met() {
			continue
		}
		where := "every repeat misses it"
		if g.ratio.min() <= g.bound && g.bound <= g.ratio.max() {
			where = "on both sides of the bound"
		}
		if g.level == 0 {
			lines = append(lines, fmt.Sprintf("- *%s*: the median misses the bound by %.0f%% of it; the per-repeat ratios run from %.2fx to %.2fx, %s. What the responder spends beyond the echo is its decision and the scheduling around it (\"Where the difference goes\" below); `TestBenchPairs` repeats such a pair as often as wanted to tell a change from the spread.",
				g.what, 100*math.Abs(g.ratio.median()-g.bound)/g.bound, g.ratio.min(), g.ratio.max(), where))
			continue
		}
		var p50, p99, lost spread
		for _, n := range g.pair {
			p50 = append(p50, f[n].P50[g.level]...)
			p99 = append(p99, f[n].P99[g.level]...)
			lost = append(lost, f[n].Lost[g.level]...)
		}
		lines = append(lines, fmt.Sprintf("- *%s*: the per-repeat ratios run from %.2fx to %.2fx, %s. A paced run's tail is set by the few moments its server is not scheduled at all: the bursts of the %v ticks then queue for milliseconds (these runs' p99s are %.1f–%.1f ms against p50s of %.1f–%.1f ms). The turns share long stretches of stalls between the two servers, but whether a short one falls into one server's turn or the other's is still chance, a few of them in each server's %v of a repeat. The unanswered share of the same runs goes from %.2f%% to %.2f%%: probes dropped by a full receive buffer during a stall are missing from the latencies, so the run with the worse stall may show the better p99. %s",
			g.what, g.ratio.min(), g.ratio.max(), where, paceTick, p99.min()/1e3, p99.max()/1e3, p50.min()/1e3, p50.max()/1e3, r.Duration, lost.min()*100, lost.max()*100,
			oursInTail(ratios(f[g.pair[1]].CPU, f[g.pair[0]].CPU), g.level, g.bound)))
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\nWhy the missed goals miss:\n\n" + strings.Join(lines, "\n") + "\n")
}

// oursInTail says what of a paced tail is the responder's own, from its
// pair's CPU-per-answer ratios at saturation, for a paced run at level
// percent of the slower server's saturation and a tail bound.
//
// After a stall a server drains its backlog at its capacity less the
// offered rate. With the responder's capacity 1/c of the echo's and the
// rate a share L of the responder's, the responder's backlog drains
// (c−L)/(1−L) times as long as the echo's: at L = 1/2 a CPU ratio c
// predicts a tail ratio of 2c−1, and a tail bound b asks for c at most
// L + b(1−L).
func oursInTail(cpu spread, level int, bound float64) string {
	c, l := cpu.median(), float64(level)/100
	if c <= 1 {
		return fmt.Sprintf("The responder's CPU per answer was %s of the echo's at saturation in the same run, so its own work does not lengthen the tail: the miss is the stalls'.", cpu.format("%.2fx"))
	}
	return fmt.Sprintf("What is ours in it is the responder's CPU per answer, %s of the echo's at saturation in the same run: the decision the echo does not make (\"Where the difference goes\" below). "+
		"At a rate set to %d%% of the slower server's saturation, a stall's backlog drains at the server's capacity less the offered rate, so a small difference in capacity is a larger one in what is spare: a server with c times the echo's CPU per answer drains the same backlog (c−%.2f)/%.2f times as long, %.2fx at this run's median, and the bound asks for c at most %.3fx. "+
		"The per-source limit's check, which the responder makes and the echo does not, is a small part of c (its paired cost is in docs/bench/history.md).",
		cpu.format("%.2fx"), level, l, 1-l, (c-l)/(1-l), l+bound*(1-l))
}

// allocRow is the goal row for allocations per probe: met when every
// benchmark line counts none.
func (r *benchReport) allocRow() string {
	if r.Allocs.Err != "" || len(r.Allocs.Lines) == 0 {
		return "| allocations per probe | 0 | not measured | not measured |\n"
	}
	worst := 0.0
	for _, l := range r.Allocs.Lines {
		f := strings.Fields(l)
		for i := 1; i < len(f); i++ {
			if v, err := strconv.ParseFloat(f[i-1], 64); err == nil && f[i] == "allocs/op" {
				worst = max(worst, v)
			}
		}
	}
	return fmt.Sprintf("| allocations per probe (`go test -bench`, every serving mode) | 0 | %s | %s |\n", strconv.FormatFloat(worst, 'f', -1, 64), metVerdict(worst == 0))
}

// fmtRatio formats a/b.
func fmtRatio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// writeProxy writes part 2.
func (r *benchReport) writeProxy(b *strings.Builder) {
	b.WriteString("## 2. Session setups against an in-path proxy\n\n")
	if r.ProxyErr != "" {
		fmt.Fprintf(b, "Not measured: %s\n\n", r.ProxyErr)
		return
	}
	pf := r.Proxy
	writeProse(b, "proxy-method", map[string]any{
		"P": pf, "Parallel": proxySetupPar, "KeepaliveSize": wire.KeepaliveSize, "Interval": proxyInterval,
		"Servers": proxyServers, "Tick": time.Second / clockTicks, "KillMargin": proxyKillMargin,
	})
	b.WriteString("| | nginx stream proxy | Usher redirect | Usher ÷ nginx (per-repeat pairs) |\n|---|---|---|---|\n")
	row := func(what, verb string, by map[string]spread, k float64) {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", what, scale(by[balNginx], k).format(verb), scale(by[balUsher], k).format(verb),
			ratios(by[balUsher], by[balNginx]).format("%.3fx"))
	}
	row("balancer CPU seconds per million session packets", "%.3f", pf.CPUPerM, 1)
	row("sessions set up per second", "%.0f", pf.SetupRate, 1)
	row("setup latency p50 (ms)", "%.2f", pf.SetupP50, 1)
	row("sessions answered after the balancer's SIGKILL (%)", "%.1f", pf.Survived, 100)
	b.WriteString("\n")
	for _, p := range []string{"proxy_cpu.png", "proxy_setup.png", "proxy_kill.png"} {
		fmt.Fprintf(b, "![%s](%s)\n", p, filepath.ToSlash(filepath.Join(r.PlotDir, p)))
	}
	b.WriteString("\n")
}
