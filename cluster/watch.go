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
// LastContact every RaftWatch. Once the leader has been silent for
// RaftHeartbeat plus a random jitter (up to a fifth of it, so that the
// followers do not all stand in the same instant and split the vote), the
// watch makes raft run its own check now, by lowering the heartbeat timeout
// by a nanosecond through ReloadConfig (which fires a follower's timer at
// once) and setting it back. Raft still decides by its own rule, "no
// contact for a heartbeat timeout", so the fencing argument in the package
// documentation is untouched; only the random wait for the next timer goes
// away, and the gap drops to about RaftHeartbeat.

// watchIdle is how often the leader watch looks whether this node has become
// a voting follower, while it is not one.
const watchIdle = time.Second

// runLeaderWatch polls the leader's silence until stop is closed.
func (c *Cluster) runLeaderWatch(rng *rand.Rand) {
	defer close(c.watchDone)
	t := time.NewTimer(c.timing.RaftWatch)
	defer t.Stop()
	threshold := c.watchThreshold(rng)
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
		if last.IsZero() || time.Since(last) < threshold || last.Equal(poked) {
			continue
		}
		poked = last
		threshold = c.watchThreshold(rng)
		if err := c.pokeRaft(); err != nil {
			c.logger.Warn("leader watch: cannot prompt raft's heartbeat check", "error", err)
			continue
		}
		c.watchPrompts.Add(1)
		c.logger.Debug("leader watch: leader silent, prompted raft's heartbeat check",
			"silent", time.Since(last).Round(time.Millisecond))
	}
}

// watchThreshold returns RaftHeartbeat plus a random fifth of it at most.
func (c *Cluster) watchThreshold(rng *rand.Rand) time.Duration {
	hb := c.timing.RaftHeartbeat
	return hb + time.Duration(rng.Int64N(int64(hb/5)+1))
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
