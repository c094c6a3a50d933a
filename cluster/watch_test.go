package cluster

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestLeaderWatchPromptsElection crashes the leader of a farm whose raft
// timer alone would wait one to two heartbeat timeouts, and checks that a
// follower's watch prompted raft, that raft's heartbeat timeout is back at
// its configured value afterwards, and that a new leader serves.
func TestLeaderWatchPromptsElection(t *testing.T) {
	ledger := newVIPLedger(t)
	nodes := startFarmWith(t, 3, 3, ledger, func(cfg *Config) {
		cfg.Timing.RaftHeartbeat = 800 * time.Millisecond
		cfg.Timing.RaftElection = 800 * time.Millisecond
		cfg.Timing.RaftLease = 400 * time.Millisecond
		cfg.Timing.RaftWatch = 20 * time.Millisecond
	})
	old := waitSingleServer(t, nodes, 20*time.Second)
	rest := without(nodes, old)
	old.crash()
	next := waitSingleServer(t, rest, 20*time.Second)
	var prompts uint64
	for _, c := range rest {
		prompts += c.watchPrompts.Load()
		if got := c.raft.ReloadableConfig().HeartbeatTimeout; got != 800*time.Millisecond {
			t.Errorf("%s: raft heartbeat timeout is %v after the watch, want 800ms", c.cfg.NodeName, got)
		}
	}
	if prompts == 0 {
		t.Errorf("no follower's leader watch prompted raft after the leader crashed")
	}
	t.Logf("%s took over; %d prompts", next.cfg.NodeName, prompts)
}

func TestWatchThreshold(t *testing.T) {
	for _, hb := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		c := &Cluster{timing: Timing{RaftHeartbeat: hb}}
		rng := rand.New(rand.NewPCG(1, 2))
		lo, hi := hb+hb/5, hb
		for range 1000 {
			d := c.watchThreshold(rng)
			if d < hb || d > hb+hb/5 {
				t.Fatalf("heartbeat %v: threshold %v outside [%v, %v]", hb, d, hb, hb+hb/5)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if hi-lo < hb/10 {
			t.Errorf("heartbeat %v: thresholds span only %v: the jitter that keeps followers apart is missing", hb, hi-lo)
		}
	}
}
