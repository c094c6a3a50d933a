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

// writeFailover writes part 3 from the results in dir.
func writeFailover(b *strings.Builder, dir string) {
	b.WriteString("## 3. Failover against keepalived\n\n")
	b.WriteString("Measured in the chaos suite's namespace farm (a bridge in a namespace of its own, three server namespaces and a client namespace on 198.18.0.0/15), not by this run: host death of the holder (its link down, then SIGKILL), gap = death to the first answered probe at the balancer address from the client namespace, probed every 5 ms by the same prober. keepalived holds the address with VRRP in front of the same servers; Usher's leader holds it in netlink mode. Commands, as root: `scripts/chaos.sh` (Usher) and `USHER_BENCH_KEEPALIVED=1 go test -count=1 -run TestKeepalivedFailover -v ./e2e/` (keepalived, installed from Debian's packages if missing).\n\n")
	b.WriteString("| Holder | kills | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | measured |\n|---|---|---|---|---|---|---|\n")
	found := 0
	for _, row := range failoverRows {
		raw, err := os.ReadFile(filepath.Join(dir, row.file))
		if err != nil {
			fmt.Fprintf(b, "| %s | not measured | | | | | |\n", row.label)
			continue
		}
		var res failoverResult
		if err := json.Unmarshal(raw, &res); err != nil {
			fmt.Fprintf(b, "| %s | unreadable: %v | | | | | |\n", row.label, err)
			continue
		}
		g, ok := res.Metrics["vip-failover-gap"]
		if !ok {
			fmt.Fprintf(b, "| %s | no gap recorded | | | | | |\n", row.label)
			continue
		}
		found++
		started := res.Started
		if len(started) >= 16 {
			started = strings.Replace(started[:16], "T", " ", 1) + " UTC"
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %s |\n", row.label, g.N, g.P50, g.P95, g.P99, g.Max, started)
	}
	if found == 0 {
		b.WriteString("\nNo results found in " + dir + ": run the commands above first.\n")
		return
	}
	b.WriteString("\nWhat sessions see during the gap: with keepalived in front of an in-path balancer every session's packets go through the address, so every session stalls for the whole gap. Usher's sessions never touch the balancer address: in the same leader-death runs no session on a surviving server saw a keepalive gap (the chaos suite checks each one), and only new sessions wait for the gap.\n")
}
