//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/usherlb/usher/internal/stats"
)

// ResultsEnv names an environment variable: when set, TestChaos writes each
// scenario's statistics to <dir>/<scenario>-<profile>-<topology>.json and a
// summary table to <dir>/README.md.
const ResultsEnv = "USHER_CHAOS_RESULTS"

// chaosResult collects one scenario run's measurements and invariant
// violations.
type chaosResult struct {
	Scenario string `json:"scenario"`
	Profile  string `json:"profile"`
	Topology string `json:"topology"`
	// Reps is how many times the fault was injected, as run: a
	// rolling-restart pass (every node restarted once) is one, a
	// fault-free watch is one.
	Reps int `json:"reps"`
	// Started is the wall-clock start of the run, for the record.
	Started time.Time `json:"started"`
	// Seconds is how long the run took.
	Seconds float64 `json:"seconds"`
	// LoadStart and LoadEnd are /proc/loadavg at the start and the end:
	// the farm shares the machine's cores with everything else running.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// Answers is how many probe answers the invariant checks looked at.
	Answers int `json:"answers"`
	// Holds is how many VIP holding intervals were checked for overlap.
	Holds int `json:"holds"`
	// Polls is how many status polls of the agents were answered.
	Polls int `json:"polls,omitempty"`
	// Metrics maps a measurement's name to its samples' summary.
	Metrics map[string]*metric `json:"metrics"`
	// Violations counts failed invariant checks by kind.
	Violations map[string]int `json:"violations"`
	// Notes holds what the scenario wants a reader to know.
	Notes []string `json:"notes,omitempty"`
	// Busy holds the figures of a run beside busy neighbours
	// (chaos_busy_test.go), nil for the others.
	Busy *busyFigures `json:"busy,omitempty"`
	// Flood holds the flood scenario's figures (chaos_flood_test.go),
	// nil for the others.
	Flood *floodFigures `json:"flood,omitempty"`

	mu sync.Mutex
}

// metric is a named set of duration samples.
type metric struct {
	N       int       `json:"n"`
	P50     float64   `json:"p50_ms"`
	P95     float64   `json:"p95_ms"`
	P99     float64   `json:"p99_ms"`
	Max     float64   `json:"max_ms"`
	Samples []float64 `json:"samples_ms"`

	raw []time.Duration
}

func newResult(scenario, profile, topology string) *chaosResult {
	return &chaosResult{
		Scenario: scenario, Profile: profile, Topology: topology,
		Started: time.Now().UTC(), Metrics: map[string]*metric{}, Violations: map[string]int{},
		LoadStart: loadAvg(),
	}
}

// loadAvg returns the first three fields of /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// repDone counts one repetition of the fault, completed.
func (r *chaosResult) repDone() {
	r.mu.Lock()
	r.Reps++
	r.mu.Unlock()
}

// observe adds one sample to the named metric.
func (r *chaosResult) observe(name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.Metrics[name]
	if m == nil {
		m = &metric{}
		r.Metrics[name] = m
	}
	m.raw = append(m.raw, d)
}

// violation counts one failed check of the given kind.
func (r *chaosResult) violation(kind string) {
	r.mu.Lock()
	r.Violations[kind]++
	r.mu.Unlock()
}

// note records a remark for the results.
func (r *chaosResult) note(format string, args ...any) {
	r.mu.Lock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summarize fills every metric's percentiles from its samples.
func (r *chaosResult) summarize() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.Metrics {
		m.N = len(m.raw)
		m.P50, m.P95 = ms(stats.Percentile(m.raw, 50)), ms(stats.Percentile(m.raw, 95))
		m.P99, m.Max = ms(stats.Percentile(m.raw, 99)), ms(stats.Percentile(m.raw, 100))
		m.Samples = m.Samples[:0]
		for _, d := range m.raw {
			m.Samples = append(m.Samples, ms(d))
		}
	}
}

// log prints the metric summaries to the test log.
func (r *chaosResult) log(logf func(string, ...any)) {
	r.summarize()
	names := make([]string, 0, len(r.Metrics))
	for n := range r.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := r.Metrics[n]
		logf("%s/%s/%s %s: n=%d p50=%.1fms p95=%.1fms p99=%.1fms max=%.1fms",
			r.Scenario, r.Profile, r.Topology, n, m.N, m.P50, m.P95, m.P99, m.Max)
	}
	for _, n := range r.Notes {
		logf("%s/%s/%s note: %s", r.Scenario, r.Profile, r.Topology, n)
	}
}

// write stores the result as JSON under dir.
func (r *chaosResult) write(dir string) error {
	r.summarize()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s-%s.json", r.Scenario, r.Profile, r.Topology)
	return os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
}

// writeTable regenerates dir/README.md from every result file in dir, so
// runs of different profiles add up to one table.
func writeTable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	var rs []*chaosResult
	for _, f := range files {
		if filepath.Base(f) == securityResults {
			continue // the hostile-peer suite's figures, not a scenario
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		r := new(chaosResult)
		if err := json.Unmarshal(b, r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *chaosResult) int {
		return strings.Compare(a.Scenario+a.Topology+a.Profile, b.Scenario+b.Topology+b.Profile)
	})
	var sb strings.Builder
	sb.WriteString("# Chaos suite results\n\n")
	sb.WriteString("Generated by `TestChaos` (see the README's chaos section); one row per scenario,\n")
	sb.WriteString("profile, topology and measurement. Times in milliseconds. `netns` is the\n")
	sb.WriteString("namespace farm with the VIP in netlink mode, `loop` the loopback farm in bind mode.\n")
	sb.WriteString("`reps` is how many times the fault was injected, as run: a rolling-restart pass (every node\n")
	sb.WriteString("restarted once) counts as one, a fault-free watch is one. `violations` counts failed checks by\n")
	sb.WriteString("kind; e2e/doc.go says what each checks and whose record it reads.\n")
	sb.WriteString("What the figures mean, and the causes of those that miss, are in FINDINGS.md when present.\n\n")
	sb.WriteString("| scenario | profile | topology | reps | measurement | n | p50 | p95 | p99 | max | violations | load avg |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		viol := "0"
		if len(r.Violations) > 0 {
			var parts []string
			for k, v := range r.Violations {
				parts = append(parts, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(parts)
			viol = strings.Join(parts, " ")
		}
		names := make([]string, 0, len(r.Metrics))
		for n := range r.Metrics {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			fmt.Fprintf(&sb, "| %s | %s | %s | %d | (invariants only) | | | | | | %s | %s |\n",
				r.Scenario, r.Profile, r.Topology, r.Reps, viol, r.LoadEnd)
		}
		for _, n := range names {
			m := r.Metrics[n]
			fmt.Fprintf(&sb, "| %s | %s | %s | %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %s | %s |\n",
				r.Scenario, r.Profile, r.Topology, r.Reps, n, m.N, m.P50, m.P95, m.P99, m.Max, viol, r.LoadEnd)
		}
	}
	sb.WriteString(busyTable(rs))
	var notes []string
	for _, r := range rs {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s/%s/%s: %s", r.Scenario, r.Profile, r.Topology, n))
		}
	}
	if len(notes) > 0 {
		sb.WriteString("\n## Notes\n\n" + strings.Join(notes, "\n") + "\n")
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(sb.String()), 0o644)
}
