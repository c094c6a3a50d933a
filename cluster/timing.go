package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"
)

// Timing holds the raft and memberlist timing knobs. Every node of a farm
// must use the same values: the fencing argument (see the package
// documentation) compares this node's RaftLease with the other voters'
// RaftHeartbeat.
type Timing struct {
	// RaftHeartbeat is how long a follower waits without hearing from the
	// leader before it may stand for election (raft HeartbeatTimeout).
	RaftHeartbeat time.Duration
	// RaftElection is the candidate's election timeout (raft ElectionTimeout).
	RaftElection time.Duration
	// RaftLease is the leader lease. It must be shorter than RaftHeartbeat;
	// the difference is the fencing margin.
	RaftLease time.Duration
	// RaftCommit is raft's CommitTimeout.
	RaftCommit time.Duration
	// RaftWatch, when not zero, is how often a voting follower checks its
	// leader's silence itself: once RaftHeartbeat (plus a fifth of it per
	// follower that stands before it, and a little jitter) has passed
	// without contact, it makes raft stand for election at once rather than
	// at raft's next randomized timer, which fires one to two heartbeat
	// timeouts apart (see watch.go). Zero leaves detection to raft's timer
	// alone.
	RaftWatch time.Duration
	// ProbeInterval is memberlist's failure-detector probe interval.
	ProbeInterval time.Duration
	// ProbeTimeout is how long memberlist waits for a probe's ack.
	ProbeTimeout time.Duration
	// SuspicionMult scales memberlist's suspicion timeout.
	SuspicionMult int
	// GossipInterval is memberlist's gossip interval.
	GossipInterval time.Duration
	// PublishInterval is how often the node republishes its load report.
	PublishInterval time.Duration
}

// DefaultPublishInterval is the load-report republish interval of every profile.
const DefaultPublishInterval = 250 * time.Millisecond

// Profile names, for Profile.
const (
	ProfileLAN   = "lan"
	ProfileFast  = "fast"
	ProfileRapid = "rapid"
)

// Profile returns the named timing profile: "lan" (library defaults), "fast"
// or "rapid". The package documentation has the table.
func Profile(name string) (Timing, error) {
	switch name {
	case ProfileLAN:
		return Timing{
			RaftHeartbeat:   1000 * time.Millisecond,
			RaftElection:    1000 * time.Millisecond,
			RaftLease:       500 * time.Millisecond,
			RaftCommit:      50 * time.Millisecond,
			ProbeInterval:   1000 * time.Millisecond,
			ProbeTimeout:    500 * time.Millisecond,
			SuspicionMult:   4,
			GossipInterval:  200 * time.Millisecond,
			PublishInterval: DefaultPublishInterval,
		}, nil
	case ProfileFast:
		return Timing{
			RaftHeartbeat:   300 * time.Millisecond,
			RaftElection:    300 * time.Millisecond,
			RaftLease:       150 * time.Millisecond,
			RaftCommit:      15 * time.Millisecond,
			RaftWatch:       25 * time.Millisecond,
			ProbeInterval:   200 * time.Millisecond,
			ProbeTimeout:    100 * time.Millisecond,
			SuspicionMult:   2,
			GossipInterval:  50 * time.Millisecond,
			PublishInterval: DefaultPublishInterval,
		}, nil
	case ProfileRapid:
		return Timing{
			RaftHeartbeat:   100 * time.Millisecond,
			RaftElection:    100 * time.Millisecond,
			RaftLease:       50 * time.Millisecond,
			RaftCommit:      5 * time.Millisecond,
			RaftWatch:       10 * time.Millisecond,
			ProbeInterval:   100 * time.Millisecond,
			ProbeTimeout:    50 * time.Millisecond,
			SuspicionMult:   2,
			GossipInterval:  30 * time.Millisecond,
			PublishInterval: DefaultPublishInterval,
		}, nil
	}
	return Timing{}, fmt.Errorf("profile: %q is not %q, %q or %q", name, ProfileLAN, ProfileFast, ProfileRapid)
}

// validate checks the rules raft and memberlist impose plus the fencing rule
// RaftLease < RaftHeartbeat.
func (t Timing) validate() error {
	atLeast := []struct {
		key string
		v   time.Duration
		min time.Duration
	}{
		// raft wants 5ms at least of its heartbeat timeout and its lease,
		// and the lease is set a millisecond below the heartbeat.
		{"raft_heartbeat", t.RaftHeartbeat, 10 * time.Millisecond},
		{"raft_election", t.RaftElection, 5 * time.Millisecond},
		{"raft_lease", t.RaftLease, 5 * time.Millisecond},
		{"raft_commit", t.RaftCommit, time.Millisecond},
		{"probe_interval", t.ProbeInterval, time.Millisecond},
		{"probe_timeout", t.ProbeTimeout, time.Millisecond},
		{"gossip_interval", t.GossipInterval, time.Millisecond},
		{"publish_interval", t.PublishInterval, time.Millisecond},
	}
	for _, c := range atLeast {
		if c.v < c.min {
			return fmt.Errorf("timing.%s: %s is below the minimum %s", c.key, c.v, c.min)
		}
	}
	if t.RaftWatch < 0 || t.RaftWatch > t.RaftHeartbeat/2 {
		return fmt.Errorf("timing.raft_watch: %s is not between 0 (off) and half of raft_heartbeat %s", t.RaftWatch, t.RaftHeartbeat)
	}
	if t.RaftLease >= t.RaftHeartbeat {
		return fmt.Errorf("timing.raft_lease: %s is not below raft_heartbeat %s (fencing needs a margin)", t.RaftLease, t.RaftHeartbeat)
	}
	if t.RaftElection < t.RaftHeartbeat {
		return fmt.Errorf("timing.raft_election: %s is below raft_heartbeat %s", t.RaftElection, t.RaftHeartbeat)
	}
	if t.ProbeTimeout > t.ProbeInterval {
		return fmt.Errorf("timing.probe_timeout: %s is above probe_interval %s", t.ProbeTimeout, t.ProbeInterval)
	}
	if t.SuspicionMult < 1 {
		return fmt.Errorf("timing.suspicion_mult: %d is below 1", t.SuspicionMult)
	}
	return nil
}

// Fingerprint returns a hash of the raft timing values the fencing argument
// depends on (heartbeat, election and lease). Nodes gossip it in their
// reports; nodes with different fingerprints never share a raft cluster.
func (t Timing) Fingerprint() uint32 {
	h := fnv.New32a()
	var b [8]byte
	for _, d := range []time.Duration{t.RaftHeartbeat, t.RaftElection, t.RaftLease} {
		binary.BigEndian.PutUint64(b[:], uint64(d))
		h.Write(b[:])
	}
	return h.Sum32()
}
