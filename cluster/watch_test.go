package cluster

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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

// TestWatchJitter checks that a silence's jitter stays within a twentieth
// of the heartbeat timeout and spreads over it.
func TestWatchJitter(t *testing.T) {
	for _, hb := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		rng := rand.New(rand.NewPCG(1, 2))
		lo, hi := hb, time.Duration(0)
		for range 1000 {
			d := watchJitter(hb, rng)
			if d < 0 || d > hb/20 {
				t.Fatalf("heartbeat %v: jitter %v outside [0, %v]", hb, d, hb/20)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if hi-lo < hb/40 {
			t.Errorf("heartbeat %v: jitter spans only %v", hb, hi-lo)
		}
	}
}

// TestWatchRank checks the order in which the followers stand: by ID
// among the voters, the leader and standbys left out.
func TestWatchRank(t *testing.T) {
	voters := map[string]raft.ServerSuffrage{"a": raft.Voter, "b": raft.Voter, "c": raft.Voter, "d": raft.Nonvoter, "e": raft.Voter}
	tests := []struct {
		self, leader string
		want         int
	}{
		{"b", "a", 0}, {"c", "a", 1}, {"e", "a", 2},
		{"a", "c", 0}, {"b", "c", 1}, {"e", "c", 2},
		{"e", "", 3},  // no leader known: everyone else counts
		{"e", "d", 3}, // a standby never counts
	}
	for _, tt := range tests {
		if got := rankAmong(voters, tt.self, tt.leader); got != tt.want {
			t.Errorf("rank of %s under leader %q = %d, want %d", tt.self, tt.leader, got, tt.want)
		}
	}
}
