package cluster

import (
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// tryBootstrap bootstraps raft once BootstrapExpect voter-eligible members
// are alive and none of them already has raft state. Every node computes the
// same configuration (the first BootstrapExpect eligible members by name),
// and only the nodes in it call BootstrapCluster.
//
// Nodes that start together see one another join over some tens of
// milliseconds, so a node deciding on the first view it has can leave out a
// member that the others see, and two different configurations would be
// bootstrapped (two raft clusters sharing members, each refusing the
// other's leader). So the chosen set must stay the same for bootstrapSettle
// (see settled) before the node acts: long enough for every join to reach
// every node, and for a member's raft state, once it has some, to show in
// its reports before another node acts on an older view.
func (c *Cluster) tryBootstrap(m *maintenance) {
	if !c.cfg.Voter {
		return
	}
	now := time.Now()
	eligible, ok := c.bootstrapCandidates(now)
	if !ok || len(eligible) < c.cfg.BootstrapExpect {
		m.boot = bootWait{}
		return
	}
	eligible = eligible[:c.cfg.BootstrapExpect] // snapshot is sorted by name
	var conf raft.Configuration
	self := false
	for _, e := range eligible {
		self = self || e.name == c.cfg.NodeName
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(e.name),
			Address:  raft.ServerAddress(e.report.RaftAddr),
		})
	}
	if !self {
		return
	}
	if c.cfg.BootstrapExpect > 1 {
		wait := m.boot.settled(conf.Servers, now, bootstrapSettle(c.timing))
		if wait > 0 {
			m.wakeAfter(wait)
			return
		}
	}
	c.bootstrap(conf)
}

// bootstrapCandidates returns the alive voter-eligible members this node
// may bootstrap with, sorted by name; ok is false while the decision must
// wait (a member's report or raft address is not yet verified) or must not
// be made (a member already has raft state).
func (c *Cluster) bootstrapCandidates(now time.Time) (eligible []memberEntry, ok bool) {
	for _, e := range c.members.snapshot() {
		if e.status != Alive {
			continue
		}
		young := now.Sub(e.firstSeen) < unverifiedGrace
		if c.auth != nil && e.reportedAt.IsZero() && young {
			// Its signed report is on its way (its certificate is being
			// fetched): every node must decide on the same members.
			c.logger.Debug("not bootstrapping yet: a member's report is not verified", "member", e.name)
			return nil, false
		}
		if e.report.Bootstrapped {
			c.logger.Debug("not bootstrapping: a member already has raft state", "member", e.name)
			return nil, false
		}
		if !e.report.Voter || e.report.RaftAddr == "" || !c.sameTiming(e) {
			continue
		}
		switch ok, done := c.raftAddrChecked(e); {
		case ok:
			eligible = append(eligible, e)
		case !done || young:
			// A check that failed while the member was starting (its
			// listener not up yet) is tried again: leaving the member
			// out here while another node counts it would split the farm.
			c.logger.Debug("not bootstrapping yet: a member's raft address is being checked", "member", e.name)
			return nil, false
		}
	}
	return eligible, true
}

// bootstrap calls BootstrapCluster with conf.
func (c *Cluster) bootstrap(conf raft.Configuration) {
	err := c.raft.BootstrapCluster(conf).Error()
	switch {
	case err == nil:
		c.verified.Store(true)
		c.logger.Info("bootstrapped raft", "voters", serverIDs(conf.Servers))
	case errors.Is(err, raft.ErrCantBootstrap):
		c.logger.Debug("raft already has state, not bootstrapping")
	default:
		c.logger.Error("bootstrapping raft", "error", err)
		return
	}
	c.bootstrapped.Store(true)
}

// bootWait is what a node waiting to bootstrap remembers: the
// configuration it would bootstrap and since when it has chosen it.
type bootWait struct {
	servers []raft.Server
	since   time.Time
}

// settled records that servers is the configuration this node would
// bootstrap now, and returns how much longer it must stay the choice
// before the node acts (0: act now). Any change of the choice, of a member
// or of an address, starts the wait again.
func (w *bootWait) settled(servers []raft.Server, now time.Time, settle time.Duration) time.Duration {
	if w.since.IsZero() || !slices.Equal(w.servers, servers) {
		w.servers, w.since = slices.Clone(servers), now
	}
	return max(0, settle-now.Sub(w.since))
}

// bootstrapSettle is how long the chosen bootstrap configuration must stay
// unchanged: several gossip rounds, in which a join or a member's new raft
// state reaches every node, and never less than minBootstrapSettle.
func bootstrapSettle(t Timing) time.Duration {
	return max(5*t.GossipInterval, minBootstrapSettle)
}

// minBootstrapSettle bounds bootstrapSettle below for the fastest timings.
const minBootstrapSettle = 200 * time.Millisecond
