package cluster

import (
	"math/rand/v2"
	"time"

	"github.com/hashicorp/raft"
)

// The leader watch: a follower's prompt check of its leader's silence.
//
// A raft follower notices that its leader went silent only when its
// heartbeat timer fires, and hashicorp/raft re-arms that timer at a random
// point between one and two heartbeat timeouts. After a leader dies a
// follower therefore stands for election up to twice RaftHeartbeat after
// the leader's last message, and the election also needs a second voter
// to have noticed (a voter that still knows a leader refuses votes), so
// the failover gap is about twice RaftHeartbeat on average.
//
// With Timing.RaftWatch set, a voting follower also polls raft's
// LastContact every RaftWatch. Once the leader has been silent long enough
// (watchThreshold), the watch makes raft run its own check now, by
// lowering the heartbeat timeout by a nanosecond through ReloadConfig
// (which fires a follower's timer at once) and setting it back. Raft still
// decides by its own rule, "no contact for a heartbeat timeout", so the
// fencing argument in the package documentation is untouched; only the
// random wait for the next timer goes away, and the gap drops to about
// RaftHeartbeat.
//
// Long enough is RaftHeartbeat, then a fifth of it for each of the
// leader's other voters whose ID sorts before this node's (its rank), then
// a random twentieth of it at most. The followers stand one after another,
// in an order they agree on, because the first to stand cannot win: its
// pre-vote asks voters that still know the leader, and they refuse it. The
// one that stands when a majority less itself have already let the leader
// go (with three voters: the second) gets their pre-votes and wins at
// once. Followers that stood at nearly the same instant all failed their
// pre-votes and waited out a randomized election timeout before trying
// again: with a fifth of a heartbeat timeout of jitter alone, a fifth of
// the failovers of a busy three-voter farm took that extra round (issue
// 17). The rank's fifth is a bound on how late a follower's own check
// runs after its watch prompts it; if the followers' views of the voters
// or of the leader differ, the order may tie, and raft's randomized
// timeouts settle it as before.

// watchIdle is how often the leader watch looks whether this node has become
// a voting follower, while it is not one.
const watchIdle = time.Second

// runLeaderWatch polls the leader's silence until stop is closed.
func (c *Cluster) runLeaderWatch(rng *rand.Rand) {
	defer close(c.watchDone)
	t := time.NewTimer(c.timing.RaftWatch)
	defer t.Stop()
	jitter := watchJitter(c.timing.RaftHeartbeat, rng)
	var poked time.Time // the silence last poked about, by its last contact
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		// Only a voting follower watches its leader; any other node (the
		// leader, a standby, a member outside raft) looks again in a while,
		// so that it does not wake up forty times a second for nothing.
		if c.raft.State() != raft.Follower || (*c.voters.Load())[c.cfg.NodeName] != raft.Voter {
			t.Reset(watchIdle)
			continue
		}
		t.Reset(c.timing.RaftWatch)
		last := c.raft.LastContact()
		if last.IsZero() || time.Since(last) < c.watchThreshold(jitter) || last.Equal(poked) {
			continue
		}
		poked = last
		jitter = watchJitter(c.timing.RaftHeartbeat, rng)
		if err := c.pokeRaft(); err != nil {
			c.logger.Warn("leader watch: cannot prompt raft's heartbeat check", "error", err)
			continue
		}
		c.watchPrompts.Add(1)
		c.logger.Debug("leader watch: leader silent, prompted raft's heartbeat check",
			"silent", time.Since(last).Round(time.Millisecond))
	}
}

// watchThreshold returns how long the leader may be silent before the
// watch prompts raft: RaftHeartbeat, a fifth of it per rank (watchRank),
// and jitter.
func (c *Cluster) watchThreshold(jitter time.Duration) time.Duration {
	hb := c.timing.RaftHeartbeat
	return hb + time.Duration(c.watchRank())*(hb/5) + jitter
}

// watchJitter draws a silence's jitter: a twentieth of hb at most.
func watchJitter(hb time.Duration, rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(hb/20) + 1))
}

// watchRank returns how many voters of the latest configuration, other
// than this node and the leader it follows, have an ID that sorts before
// this node's.
func (c *Cluster) watchRank() int {
	_, leader := c.raft.LeaderWithID()
	return rankAmong(*c.voters.Load(), c.cfg.NodeName, string(leader))
}

// rankAmong returns how many voters among servers, leader left out, sort
// before self.
func rankAmong(servers map[string]raft.ServerSuffrage, self, leader string) int {
	rank := 0
	for id, s := range servers {
		if s == raft.Voter && id != leader && id < self {
			rank++
		}
	}
	return rank
}

// pokeRaft makes a follower's raft check its leader's silence now: a lower
// heartbeat timeout fires the follower's timer at once (raft.ReloadConfig),
// and the configured value is put back straight after.
func (c *Cluster) pokeRaft() error {
	rc := c.raft.ReloadableConfig()
	hb := rc.HeartbeatTimeout
	rc.HeartbeatTimeout = hb - time.Nanosecond
	if err := c.raft.ReloadConfig(rc); err != nil {
		return err
	}
	rc.HeartbeatTimeout = hb
	return c.raft.ReloadConfig(rc)
}
