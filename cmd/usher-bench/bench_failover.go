package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// failoverRow is one line of part 3: a failover setup and its gaps, read
// from the namespace farm's results (e2e/results/*.json), which the chaos
// suite and its keepalived test write.
type failoverRow struct {
	label, file string
}

var failoverRows = []failoverRow{
	{"keepalived, VRRP advert_int 1 s (Debian's default)", "keepalived-1s-netns.json"},
	{"keepalived, VRRP advert_int 0.1 s (tuned)", "keepalived-100ms-netns.json"},
	{"Usher, profile lan", "leader-death-lan-netns.json"},
	{"Usher, profile fast", "leader-death-fast-netns.json"},
	{"Usher, profile rapid", "leader-death-rapid-netns.json"},
}

// failoverResult is the part of a results file part 3 reads.
type failoverResult struct {
	Started string `json:"started"`
	Metrics map[string]struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50_ms"`
		P95 float64 `json:"p95_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
	} `json:"metrics"`
}

// failoverDir is where part 3's results are, relative to the repository.
const failoverDir = "e2e/results"

// failoverFigures is one row of part 3 as the run found it: the gaps of
// one failover setup, or why there are none.
type failoverFigures struct {
	Label   string  `json:"label"`
	File    string  `json:"file"`
	Missing string  `json:"missing,omitempty"` // why there is no gap: "not measured", "unreadable: ..."
	N       int     `json:"n"`
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	Started string  `json:"started"` // when the chaos run measured it
}

// readFailover reads part 3's rows from the results in dir, as they are
// when the bench runs: the report shows that copy, not the files' later
// state.
func readFailover(dir string) []failoverFigures {
	out := make([]failoverFigures, 0, len(failoverRows))
	for _, row := range failoverRows {
		out = append(out, readFailoverRow(dir, row))
	}
	return out
}

// readFailoverRow reads one row's results file from dir.
func readFailoverRow(dir string, row failoverRow) failoverFigures {
	ff := failoverFigures{Label: row.label, File: row.file}
	raw, err := os.ReadFile(filepath.Join(dir, row.file))
	if err != nil {
		ff.Missing = "not measured"
		return ff
	}
	var res failoverResult
	if err := json.Unmarshal(raw, &res); err != nil {
		ff.Missing = fmt.Sprintf("unreadable: %v", err)
		return ff
	}
	g, ok := res.Metrics["vip-failover-gap"]
	if !ok {
		ff.Missing = "no gap recorded"
		return ff
	}
	ff.N, ff.P50, ff.P95, ff.P99, ff.Max, ff.Started = g.N, g.P50, g.P95, g.P99, g.Max, res.Started
	return ff
}

// writeFailover writes part 3 from the rows the run read.
func writeFailover(b *strings.Builder, rows []failoverFigures) {
	b.WriteString("## 3. Failover against keepalived\n\n")
	writeProse(b, "failover-method", nil)
	b.WriteString("| Holder | kills | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | measured |\n|---|---|---|---|---|---|---|\n")
	found := 0
	for _, ff := range rows {
		if ff.Missing != "" {
			fmt.Fprintf(b, "| %s | %s | | | | | |\n", ff.Label, ff.Missing)
			continue
		}
		found++
		started := ff.Started
		if len(started) >= 16 {
			started = strings.Replace(started[:16], "T", " ", 1) + " UTC"
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %s |\n", ff.Label, ff.N, ff.P50, ff.P95, ff.P99, ff.Max, started)
	}
	if found == 0 {
		b.WriteString("\nNo results found in " + failoverDir + ": run the commands above first.\n\n")
		return
	}
	writeProse(b, "failover-sessions", nil)
}

// writeFailoverPart writes part 3: the failover table and, when the report
// has them, the busy rows.
func writeFailoverPart(b *strings.Builder, rows []failoverFigures, busy []busyFigures) {
	writeFailover(b, rows)
	if len(busy) > 0 {
		writeBusy(b, busy)
	}
}

// busyRows are part 3's rows beside busy neighbours: the chaos suite's
// busy-host scenario and keepalived's busy variants, which run CPU hogs
// and fsync-heavy writers on the server hosts while they watch the VIP.
var busyRows = []failoverRow{
	{"keepalived, VRRP advert_int 1 s", "keepalived-busy-1s-netns.json"},
	{"keepalived, VRRP advert_int 0.1 s", "keepalived-busy-100ms-netns.json"},
	{"Usher, profile fast", "busy-host-fast-netns.json"},
	{"Usher, profile rapid", "busy-host-rapid-netns.json"},
}

// busyResult is the part of a busy run's results file part 3 reads: its
// busy block shares busyFigures' field names.
type busyResult struct {
	Started string       `json:"started"`
	Busy    *busyFigures `json:"busy"`
	Metrics map[string]struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"metrics"`
}

// busyFigures is one row of part 3's busy table as the run found it.
type busyFigures struct {
	Label        string  `json:"label"`
	File         string  `json:"file"`
	Missing      string  `json:"missing,omitempty"`
	Hogs         int     `json:"hogs"`
	Writers      int     `json:"writers"`
	WatchSeconds float64 `json:"watch_seconds"`
	AnsweredPct  float64 `json:"answered_pct"`
	LongestGapMs float64 `json:"longest_gap_ms"`
	Changes      int     `json:"leader_changes"`
	Deaths       int     `json:"deaths"`
	P50          float64 `json:"failover_p50_ms"`
	P99          float64 `json:"failover_p99_ms"`
	Started      string  `json:"started"`
}

// readBusy reads the busy rows from the results in dir.
func readBusy(dir string) []busyFigures {
	out := make([]busyFigures, 0, len(busyRows))
	for _, row := range busyRows {
		bf := busyFigures{Label: row.label, File: row.file}
		var res busyResult
		raw, err := os.ReadFile(filepath.Join(dir, row.file))
		switch {
		case err != nil:
			bf.Missing = "not measured"
		case json.Unmarshal(raw, &res) != nil || res.Busy == nil:
			bf.Missing = "unreadable"
		default:
			bf = *res.Busy
			bf.Label, bf.File = row.label, row.file
			g := res.Metrics["vip-failover-gap"]
			bf.Deaths, bf.P50, bf.P99, bf.Started = g.N, g.P50, g.P99, res.Started
		}
		out = append(out, bf)
	}
	return out
}

// writeBusy writes part 3's busy table from the rows the run read.
func writeBusy(b *strings.Builder, rows []busyFigures) {
	writeProse(b, "failover-busy", nil)
	b.WriteString("| Holder | neighbours | watched | answered | longest gap (ms) | holder changes | host deaths | failover p50 (ms) | p99 (ms) | measured |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, bf := range rows {
		if bf.Missing != "" {
			fmt.Fprintf(b, "| %s | %s | | | | | | | | |\n", bf.Label, bf.Missing)
			continue
		}
		started := bf.Started
		if len(started) >= 16 {
			started = strings.Replace(started[:16], "T", " ", 1) + " UTC"
		}
		fmt.Fprintf(b, "| %s | %d hogs, %d writers | %.0f s | %.2f%% | %.0f | %d | %d | %.0f | %.0f | %s |\n",
			bf.Label, bf.Hogs, bf.Writers, bf.WatchSeconds, bf.AnsweredPct, bf.LongestGapMs, bf.Changes, bf.Deaths, bf.P50, bf.P99, started)
	}
	b.WriteString("\n")
}
