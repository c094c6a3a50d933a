package demo

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usherlb/usher/internal/stats"
)

// summary prints the demo's results.
func (d *demo) summary(res demoResult) {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-20s %s\n", label, fmt.Sprintf(format, args...))
	}
	b.WriteString("\nsummary\n")
	line("farm", "%d agent processes (%d Raft voters), VIP %s", demoNodes, demoVoters, d.farm.VIP)
	line("clients", "%d dialed in %v (%d failed)", res.dialed, res.dialTime.Round(time.Millisecond), res.dialFailed)
	line("leader failover", "%s killed; %s answers at the VIP %v later (term %d → %d)",
		res.oldLeader, orUnknown(res.newLeader), res.failover.Round(time.Millisecond), res.oldTerm, res.newTerm)
	for _, k := range res.kills {
		if k.clients == 0 {
			line("reassignment", "%s (%s) had no clients", k.node, k.role)
			continue
		}
		if len(k.times) == 0 {
			line("reassignment", "%s (%s): none of its %d clients reassigned", k.node, k.role, k.clients)
			continue
		}
		line("reassignment", "%s (%s): %d clients moved, max %v, p50 %v%s",
			k.node, k.role, len(k.times), slices.Max(k.times).Round(time.Millisecond),
			stats.Percentile(k.times, 50).Round(time.Millisecond), pendingNote(k.pending))
	}
	line("disturbed sessions", "%d on servers that stayed up (must be 0)", res.disturbed)
	if len(res.load) > 0 {
		total, most := 0, slices.Max(res.load)
		for _, n := range res.load {
			total += n
		}
		mean := float64(total) / float64(len(res.load))
		ratio := 0.0
		if mean > 0 {
			ratio = float64(most) / mean
		}
		line("load", "max %d, mean %.1f on %d live servers (max/mean %.2f)", most, mean, len(res.load), ratio)
	}
	st := d.fleet.stats()
	line("probes", "%d sent by clients, %d by the failover prober", st.ProbesSent, res.proberSent)
	line("keepalives", "%d sent, %d answered", st.KeepalivesSent, st.KeepalivesAnswered)
	fmt.Fprint(d.out, b.String())
}

// pendingNote describes clients still not reassigned.
func pendingNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d NOT reassigned", n)
}
