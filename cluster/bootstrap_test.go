package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestBootWaitSettled(t *testing.T) {
	const settle = 200 * time.Millisecond
	t0 := time.Unix(1000, 0)
	a := []raft.Server{{ID: "n1", Address: "a:1"}, {ID: "n2", Address: "a:2"}, {ID: "n3", Address: "a:3"}}
	b := []raft.Server{{ID: "n1", Address: "a:1"}, {ID: "n2", Address: "a:2"}, {ID: "n4", Address: "a:4"}}
	moved := slices.Clone(a)
	moved[2].Address = "a:9"
	steps := []struct {
		at      time.Duration
		servers []raft.Server
		want    time.Duration
	}{
		{0, a, settle}, // first choice: wait it out
		{50 * time.Millisecond, a, 150 * time.Millisecond}, // same choice: the wait runs on
		{60 * time.Millisecond, b, settle},                 // another member: start again
		{260 * time.Millisecond, b, 0},                     // unchanged for settle: act
		{270 * time.Millisecond, a, settle},                // back to a: start again
		{300 * time.Millisecond, moved, settle},            // an address changed: start again
		{900 * time.Millisecond, moved, 0},
	}
	var w bootWait
	for i, s := range steps {
		if got := w.settled(s.servers, t0.Add(s.at), settle); got != s.want {
			t.Errorf("step %d (at %v): wait %v, want %v", i, s.at, got, s.want)
		}
	}
}

// TestStaggeredJoinsBootstrapOneConfiguration starts voter-eligible nodes
// so that one of them first sees an incomplete farm: n4 joins n1 and n2
// and counts three members, while n3 joins a moment later. Deciding on
// that first view, n4 would bootstrap [n1 n2 n4] while n1 and n2, seeing
// n3 too, bootstrap [n1 n2 n3]: two raft clusters sharing members. Every
// node must end in one configuration under one leader.
func TestStaggeredJoinsBootstrapOneConfiguration(t *testing.T) {
	ledger := newVIPLedger(t)
	start := func(name string, seed *Cluster) *Cluster {
		cfg := testConfig(t, name, ledger)
		if seed != nil {
			cfg.Join = []string{seed.GossipAddr().String()}
		}
		return startNode(t, cfg)
	}
	n1 := start("n1", nil)
	n2 := start("n2", n1)
	eventually(t, 5*time.Second, "n1 and n2 see each other", func() bool {
		_, ok := member(n1, "n2")
		return ok
	})
	n4 := start("n4", n1)
	time.Sleep(30 * time.Millisecond)
	n3 := start("n3", n1)
	nodes := []*Cluster{n1, n2, n3, n4}
	leader := waitSingleServer(t, nodes, 15*time.Second)
	want := []string{"n1", "n2", "n3"}
	eventually(t, 10*time.Second, "one configuration on every node", func() bool {
		for _, c := range nodes {
			if n, _ := c.Leader(); n != leader.cfg.NodeName || !slices.Equal(c.Stats().Voters, want) {
				return false
			}
		}
		return true
	})
}
