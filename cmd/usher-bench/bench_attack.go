package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// attackFile is part 6's source in failoverDir: the chaos suite's flood
// scenario (e2e/chaos_flood_test.go), which `make flood` runs for the
// record.
const attackFile = "flood-fast-netns.json"

// attackFigures is part 6 as the run found it: the flood scenario's
// figures, whose block in the results file shares these field names.
type attackFigures struct {
	Started             string         `json:"started"`
	LoadStart           string         `json:"loadavg_start"`
	LoadEnd             string         `json:"loadavg_end"`
	WindowSeconds       float64        `json:"window_seconds"`
	LegitSessionsPerS   int            `json:"legit_sessions_per_s"`
	LegitSessionSeconds float64        `json:"legit_session_seconds"`
	CapacityPerS        float64        `json:"capacity_per_s"`
	RateCapPerS         float64        `json:"rate_cap_per_s"`
	SaturationPerS      float64        `json:"saturation_per_s"`
	Strict              bool           `json:"strict"`
	MinAnsweredPct      float64        `json:"min_answered_pct"`
	MaxP99Ratio         float64        `json:"max_p99_ratio"`
	Windows             []attackWindow `json:"windows"`
}

// attackWindow is one row of part 6: the baseline or one attack.
type attackWindow struct {
	Attack         string             `json:"attack"`
	What           string             `json:"what"`
	AttackPerS     float64            `json:"attack_per_s"`
	SessionsTried  int                `json:"sessions_tried"`
	SessionsSetUp  int                `json:"sessions_set_up"`
	SessionPct     float64            `json:"sessions_set_up_pct"`
	ProbesSent     int                `json:"probes_sent"`
	ProbesAnswered int                `json:"probes_answered"`
	ProbePct       float64            `json:"probes_answered_pct"`
	SetupP50Ms     float64            `json:"setup_p50_ms"`
	SetupP99Ms     float64            `json:"setup_p99_ms"`
	LeaderCPUPct   float64            `json:"leader_cpu_pct"`
	Drops          map[string]float64 `json:"drops"`
	Verdict        string             `json:"verdict"`
}

// readAttack reads part 6 from the flood results in dir; the string says
// why there is none.
func readAttack(dir string) (*attackFigures, string) {
	raw, err := os.ReadFile(filepath.Join(dir, attackFile))
	if err != nil {
		return nil, "not measured (`make flood` measures it, as root)"
	}
	var res struct {
		Started   string         `json:"started"`
		LoadStart string         `json:"loadavg_start"`
		LoadEnd   string         `json:"loadavg_end"`
		Flood     *attackFigures `json:"flood"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Sprintf("unreadable %s: %v", attackFile, err)
	}
	if res.Flood == nil || len(res.Flood.Windows) == 0 {
		return nil, attackFile + " holds no flood figures"
	}
	a := res.Flood
	a.Started, a.LoadStart, a.LoadEnd = res.Started, res.LoadStart, res.LoadEnd
	return a, ""
}

// writeAttack writes part 6, when the report has it.
func (r *benchReport) writeAttack(b *strings.Builder) {
	a := r.Attack
	switch {
	case a == nil && r.AttackErr == "":
		return
	case a == nil:
		fmt.Fprintf(b, "## 6. Under attack\n\nNot measured: %s\n\n", r.AttackErr)
		return
	}
	b.WriteString("## 6. Under attack\n\n")
	enforced := "recorded only (a short window)"
	if a.Strict {
		enforced = "enforced (the run fails on a miss)"
	}
	writeProse(b, "attack-method", map[string]any{"A": a, "Enforced": enforced, "Measured": shortStarted(a.Started)})
	b.WriteString("| Attack | sent (/s) | sessions set up | probes answered | setup p50 (ms) | setup p99 (ms) | leader CPU | dropped by the agents | acceptance |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range a.Windows {
		fmt.Fprintf(b, "| %s | %.0f | %d of %d (%.2f%%) | %d of %d (%.2f%%) | %.1f | %.1f | %.0f%% | %s | %s |\n",
			w.Attack, w.AttackPerS, w.SessionsSetUp, w.SessionsTried, w.SessionPct, w.ProbesAnswered, w.ProbesSent, w.ProbePct,
			w.SetupP50Ms, w.SetupP99Ms, w.LeaderCPUPct, dropList(w.Drops), w.Verdict)
	}
	b.WriteString("\n")
	for _, w := range a.Windows {
		fmt.Fprintf(b, "- `%s`: %s.\n", w.Attack, w.What)
	}
	b.WriteString("\n")
}

// dropList renders the grown drop counters as "name{reason} n, ...",
// without the usher_ prefix, or "none".
func dropList(drops map[string]float64) string {
	if len(drops) == 0 {
		return "none"
	}
	names := make([]string, 0, len(drops))
	for k := range drops {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		name := strings.ReplaceAll(strings.TrimPrefix(k, "usher_"), `"`, "")
		parts = append(parts, fmt.Sprintf("%s %.0f", name, drops[k]))
	}
	return strings.Join(parts, ", ")
}

// shortStarted renders an RFC 3339 instant to the minute, in UTC.
func shortStarted(s string) string {
	if len(s) < 16 {
		return s
	}
	return strings.Replace(s[:16], "T", " ", 1) + " UTC"
}
