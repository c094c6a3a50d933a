package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/usherlb/usher/cluster"
)

// TestFarmViewStarting checks how the leader reads a drain: a node that
// drains itself by its report (it has no ticket key yet) is starting, one
// the operator drained is draining, and one that is both is draining.
func TestFarmViewStarting(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	member := func(name string, selfDrained bool) cluster.Member {
		return cluster.Member{
			Name:       name,
			Status:     cluster.Alive,
			Report:     cluster.Report{Service: netip.MustParseAddrPort("198.18.0.1:3479"), Capacity: 10, Draining: selfDrained},
			ReportedAt: now,
		}
	}
	st := cluster.State{Drained: map[string]bool{"drained": true, "both": true}}
	nodes, _ := farmNodes(st, []cluster.Member{
		member("ready", false), member("starting", true), member("drained", false), member("both", true),
	}, nil)
	want := map[string][2]bool{ // draining, starting
		"ready": {false, false}, "starting": {false, true}, "drained": {true, false}, "both": {true, false},
	}
	if len(nodes) != len(want) {
		t.Fatalf("%d nodes, want %d", len(nodes), len(want))
	}
	for _, n := range nodes {
		if got := [2]bool{n.Draining, n.Starting}; got != want[n.ID] {
			t.Errorf("%s: draining, starting = %v, want %v", n.ID, got, want[n.ID])
		}
	}
}
