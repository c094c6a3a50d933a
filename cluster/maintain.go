package cluster

import (
	"bytes"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/raft"
)

// maintenance is the state of the maintenance goroutine.
type maintenance struct {
	// lastLeader is the last leader ID observed, to count changes.
	lastLeader raft.ServerID
	// leading is true while this node runs the reconcile loop as leader.
	leading bool
	// keyChecked is true once this leadership has ensured a ticket key.
	keyChecked bool
	// keySeen is the farm's ticket key checkTicketKey last compared with
	// the configured one.
	keySeen []byte
	// missingSince records when each configured server was first seen not
	// alive during this leadership.
	missingSince map[raft.ServerID]time.Time
	// stateSent records the state messages sent to members outside raft
	// during this leadership; stateMsg is the buffer they are built in.
	stateSent map[string]stateSent
	stateMsg  []byte
	// hadState records the voters seen reporting raft state, on every node
	// of the configuration and across leaderships; wipedSent when the
	// leader last told a voter that lost it (wiped.go).
	hadState map[raft.ServerID]bool
	// seatedAt is when this node, started empty, first held a raft
	// configuration naming it (checkSeated).
	seatedAt  time.Time
	wipedSent map[raft.ServerID]time.Time
	// boot is the configuration this node waits to bootstrap (bootstrap.go).
	boot bootWait
	// timer wakes the loop for a wait that ends between ticks (wakeAfter).
	timer *time.Timer
	// moveRefused records the raft address the leader last refused to
	// move each voter to (voterMayMove).
	moveRefused map[raft.ServerID]raft.ServerAddress
}

// standbyCount is how many voter-eligible members beyond the voters the
// leader keeps in the raft configuration as non-voters. A standby follows
// the log, so promoting it to replace a dead voter is one configuration
// change with nothing to catch up. The other members stay out of raft: the
// leader would otherwise replicate every lease renewal (up to 60 a second)
// to every member of the farm, which at tens of members costs more CPU than
// everything else the agents do. They get the state they need from the
// leader in state messages (statemsg.go).
const standbyCount = 2

// unverifiedGrace is how long bootstrap waits for an alive member's first
// verified report (Config.TLS) before it leaves the member out: a node that
// never proves its reports must not stall the farm's start for ever.
const unverifiedGrace = 10 * time.Second

// forgetAfter is how long dead and left members stay in the member table
// once they are out of the raft configuration.
const forgetAfter = 5 * time.Minute

// runMaintenance bootstraps raft when enough voters are present, keeps the
// cached raft configuration current, counts leader changes, and on the
// leader runs the reconcile loop: every second and on membership events.
func (c *Cluster) runMaintenance() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var m maintenance
	defer m.stopTimer()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		case <-m.timerC():
		case <-c.wake:
		case o := <-c.obsCh:
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != m.lastLeader {
				if lo.LeaderID != "" && string(lo.LeaderID) != c.cfg.NodeName {
					name := string(lo.LeaderID)
					c.otherLeader.Store(&name)
				}
				if lo.LeaderID != "" {
					c.leadershipChanges.Add(1)
					metrics.IncrCounter([]string{"cluster", "leadership_changes"}, 1)
					c.logger.Info("leader changed", "leader", lo.LeaderID, "term", c.raft.CurrentTerm())
				}
				m.lastLeader = lo.LeaderID
				c.notifyUpdate()
			}
		}
		c.maintain(&m)
		c.checkTicketKey(&m)
	}
}

// wakeAfter makes the maintenance loop run again after d (sooner than its
// next tick), for a wait that ends between ticks.
func (m *maintenance) wakeAfter(d time.Duration) {
	if m.timer == nil {
		m.timer = time.NewTimer(d)
		return
	}
	m.timer.Reset(d)
}

// timerC is the channel of wakeAfter's timer (nil, never ready, without one).
func (m *maintenance) timerC() <-chan time.Time {
	if m.timer == nil {
		return nil
	}
	return m.timer.C
}

// stopTimer stops wakeAfter's timer, if any.
func (m *maintenance) stopTimer() {
	if m.timer != nil {
		m.timer.Stop()
	}
}

func (c *Cluster) maintain(m *maintenance) {
	c.askMissingCerts()
	c.checkAddrs()
	servers, ok := c.refreshConfiguration()
	if !c.bootstrapped.Load() {
		c.tryBootstrap(m)
	}
	if !c.verified.Load() {
		c.checkWiped()
		c.checkSeated(m, servers)
	}
	if !ok {
		return
	}
	entries := map[raft.ServerID]memberEntry{}
	for _, e := range c.members.snapshot() {
		entries[raft.ServerID(e.name)] = e
	}
	m.recordState(servers, entries)
	c.members.prune(forgetAfter, func(name string) bool {
		return slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == name })
	})
	c.forgetCerts(entries, servers)
	if c.raft.State() != raft.Leader {
		m.leading = false
		return
	}
	if !m.leading {
		m.leading = true
		m.keyChecked = false
		m.missingSince = map[raft.ServerID]time.Time{}
		m.stateSent = map[string]stateSent{}
	}
	if !m.keyChecked {
		m.keyChecked = c.ensureTicketKey()
	}
	c.reconcile(m, servers)
	c.sendState(m, servers)
	c.noticeWiped(m, servers, entries)
}

// forgetCerts drops the certificates of nodes that are neither among the
// member table's entries (taken before this round's prune, so a member
// pruned now is forgotten a round later) nor servers of the raft
// configuration (Config.TLS).
func (c *Cluster) forgetCerts(entries map[raft.ServerID]memberEntry, servers []raft.Server) {
	if c.auth == nil {
		return
	}
	known := make(map[string]bool, len(entries)+len(servers))
	for id := range entries {
		known[string(id)] = true
	}
	for _, s := range servers {
		known[string(s.ID)] = true
	}
	c.auth.forget(known)
}

// askMissingCerts asks each alive member whose metadata did not verify
// for its certificate again (Config.TLS), on a node that may lead or
// bootstrap (checkScope): a lost request or answer would
// otherwise wait for the member's next message, up to metaEvery intervals
// for a member that reports to the voters only.
func (c *Cluster) askMissingCerts() {
	if c.auth == nil || c.checkScope() == checkNone {
		return
	}
	for _, e := range c.members.snapshot() {
		if e.status == Alive && e.pending != nil && e.name != c.cfg.NodeName {
			c.auth.ask(e.name)
		}
	}
}

// refreshConfiguration loads the raft configuration and caches the voter map.
func (c *Cluster) refreshConfiguration() ([]raft.Server, bool) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		if !errors.Is(err, raft.ErrRaftShutdown) {
			c.logger.Warn("reading the raft configuration", "error", err)
		}
		return nil, false
	}
	servers := f.Configuration().Servers
	next := make(map[string]raft.ServerSuffrage, len(servers))
	for _, s := range servers {
		next[string(s.ID)] = s.Suffrage
	}
	if len(servers) > 0 && !c.bootstrapped.Load() {
		c.bootstrapped.Store(true)
	}
	if !maps.Equal(*c.voters.Load(), next) {
		c.voters.Store(&next)
		c.notifyUpdate()
	}
	return servers, true
}

func serverIDs(servers []raft.Server) []string {
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	return ids
}

// ensureTicketKey makes the farm's ticket key this node's configured one
// (Config.TicketKey), replacing a different key, or, without a configured
// key, proposes a random one if the FSM has none. It reports whether the
// check is done for this leadership.
func (c *Cluster) ensureTicketKey() bool {
	// The barrier makes the FSM current, so an existing key is seen.
	if err := c.raft.Barrier(raftOpTimeout).Error(); err != nil {
		return false
	}
	cur, want := c.fsm.state.Load().TicketKey, c.cfg.TicketKey
	switch {
	case len(want) == 0 && len(cur) != 0, len(want) != 0 && bytes.Equal(cur, want):
		return true
	}
	cmd, what := command{Op: opTicketKey, Key: want}, "stored the configured ticket_key as the farm's ticket key"
	switch {
	case len(want) == 0:
		cmd.Key = make([]byte, TicketKeySize)
		if _, err := rand.Read(cmd.Key); err != nil {
			c.logger.Error("generating the ticket key", "error", err)
			return false
		}
		what = "generated the ticket key"
	case len(cur) != 0:
		cmd.Op, what = opTicketKeyRotate, "replaced the farm's ticket key with the configured ticket_key"
	}
	if err := c.apply(cmd); err != nil {
		c.logger.Warn("storing the ticket key", "error", err)
		return false
	}
	c.logger.Info(what)
	return true
}

// checkTicketKey warns, once per change of the farm's ticket key, when this
// node is configured with a ticket key other than the farm's: the node
// issues and checks tickets with the farm's key, so its configured one is
// not in use. It never logs either key.
func (c *Cluster) checkTicketKey(m *maintenance) {
	farm := c.State().TicketKey
	if len(farm) == 0 || bytes.Equal(farm, m.keySeen) {
		return
	}
	m.keySeen = bytes.Clone(farm)
	if len(c.cfg.TicketKey) != 0 && !bytes.Equal(farm, c.cfg.TicketKey) {
		metrics.IncrCounter([]string{"cluster", "ticket_key_mismatch"}, 1)
		c.logger.Warn("the farm's ticket key is not this node's configured ticket_key: tickets are issued and checked with the farm's key, which the leader's ticket_key sets; give every node the same ticket_key")
	}
}

// reconcile is autopilot-lite, run on the leader: it adds alive members to
// the raft configuration as non-voters, removes left members, and replaces
// voters that have been dead for a few probe intervals by promoting alive
// voter-eligible non-voters, keeping BootstrapExpect voters.
func (c *Cluster) reconcile(m *maintenance, servers []raft.Server) {
	snapshot := c.members.snapshot()
	entries := map[raft.ServerID]memberEntry{}
	for _, e := range snapshot {
		entries[raft.ServerID(e.name)] = e
	}
	standbys := c.followServers(m, servers, entries)
	c.addStandbys(snapshot, servers, standbys)
	cl := c.classifyServers(m, servers, entries)
	c.fillVoters(m, cl)
}

// followServers follows raft addresses that changed and removes non-voters
// that are no standbys (not voter-eligible, or too many: a farm from before
// standbys had every member in raft). It returns the number of standbys
// kept.
func (c *Cluster) followServers(m *maintenance, servers []raft.Server, entries map[raft.ServerID]memberEntry) (standbys int) {
	for _, s := range servers {
		e, known := entries[s.ID]
		if !known || e.status != Alive || e.report.RaftAddr == "" || e.report.Leaving {
			continue // the dead and the leaving are handled by classifyServers
		}
		if ok, _ := c.raftAddrChecked(e); !ok {
			continue // an address is followed only once checked
		}
		addr := raft.ServerAddress(e.report.RaftAddr)
		switch {
		case s.Suffrage == raft.Voter:
			if s.Address != addr && c.voterMayMove(m, s, e) {
				c.configChange("update voter address", s.ID, c.raft.AddVoter(s.ID, addr, 0, raftOpTimeout))
			}
		case !e.report.Voter || standbys >= standbyCount:
			c.configChange("remove surplus non-voter", s.ID, c.raft.RemoveServer(s.ID, 0, raftOpTimeout))
		default:
			standbys++
			if s.Address != addr {
				c.configChange("update non-voter address", s.ID, c.raft.AddNonvoter(s.ID, addr, 0, raftOpTimeout))
			}
		}
	}
	return standbys
}

// addStandbys adds alive voter-eligible members that are not configured as
// standbys, in name order, until there are standbyCount.
func (c *Cluster) addStandbys(snapshot []memberEntry, servers []raft.Server, standbys int) {
	configured := map[raft.ServerID]bool{}
	for _, s := range servers {
		configured[s.ID] = true
	}
	for _, e := range snapshot {
		if standbys >= standbyCount {
			break
		}
		id := raft.ServerID(e.name)
		if configured[id] || e.status != Alive || !e.report.Voter || e.report.RaftAddr == "" ||
			e.report.Leaving || !c.sameTiming(e) {
			continue
		}
		if ok, _ := c.raftAddrChecked(e); !ok {
			continue // added only at a checked raft address
		}
		if c.configChange("add standby", id, c.raft.AddNonvoter(id, raft.ServerAddress(e.report.RaftAddr), 0, raftOpTimeout)) {
			standbys++
		}
	}
}

// serverClasses is what classifyServers found in the raft configuration.
type serverClasses struct {
	voters     int           // voters still configured
	deadVoters []raft.Server // voters missing for long enough to replace
	promotable []raft.Server // alive voter-eligible non-voters, by ID
}

// classifyServers sorts the configured servers into the classes that
// fillVoters acts on. Along the way it removes left servers and dead
// non-voters, and keeps m.missingSince current.
func (c *Cluster) classifyServers(m *maintenance, servers []raft.Server, entries map[raft.ServerID]memberEntry) serverClasses {
	now := time.Now()
	deadAfter := 3 * c.timing.ProbeInterval
	unknownAfter := max(10*time.Second, 10*c.timing.ProbeInterval)
	self := raft.ServerID(c.cfg.NodeName)
	var cl serverClasses
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			cl.voters++
		}
		e, known := entries[s.ID]
		alive := known && (e.status == Alive || e.status == Suspect)
		if alive || s.ID == self {
			delete(m.missingSince, s.ID)
			if s.Suffrage != raft.Voter && e.report.Voter && !e.report.Leaving && c.sameTiming(e) && !c.State().Drained[string(s.ID)] {
				cl.promotable = append(cl.promotable, s)
			}
			continue
		}
		since, seen := m.missingSince[s.ID]
		if !seen {
			since = now
			m.missingSince[s.ID] = now
		}
		switch {
		case known && e.status == Left:
			// A graceful leave: remove at once.
			if c.configChange("remove left server", s.ID, c.raft.RemoveServer(s.ID, 0, raftOpTimeout)) {
				delete(m.missingSince, s.ID)
				if s.Suffrage == raft.Voter {
					cl.voters--
				}
			}
		case known && now.Sub(since) > deadAfter, !known && now.Sub(since) > unknownAfter:
			if s.Suffrage == raft.Voter {
				cl.deadVoters = append(cl.deadVoters, s)
			} else if c.configChange("remove dead non-voter", s.ID, c.raft.RemoveServer(s.ID, 0, raftOpTimeout)) {
				delete(m.missingSince, s.ID)
			}
		}
	}
	sort.Slice(cl.promotable, func(i, j int) bool { return cl.promotable[i].ID < cl.promotable[j].ID })
	return cl
}

// fillVoters fills the voter set up to BootstrapExpect, then replaces dead
// voters one for one: promote first, remove after, so the count never
// drops. It stops at the first change that fails.
func (c *Cluster) fillVoters(m *maintenance, cl serverClasses) {
	promotable, voters := cl.promotable, cl.voters
	for len(promotable) > 0 && voters < c.cfg.BootstrapExpect {
		s := promotable[0]
		promotable = promotable[1:]
		if !c.configChange("promote to voter", s.ID, c.raft.AddVoter(s.ID, s.Address, 0, raftOpTimeout)) {
			return
		}
		voters++
	}
	for _, dead := range cl.deadVoters {
		if len(promotable) == 0 {
			return
		}
		s := promotable[0]
		promotable = promotable[1:]
		if !c.configChange("promote to voter", s.ID, c.raft.AddVoter(s.ID, s.Address, 0, raftOpTimeout)) {
			return
		}
		if !c.configChange("remove dead voter", dead.ID, c.raft.RemoveServer(dead.ID, 0, raftOpTimeout)) {
			return
		}
		delete(m.missingSince, dead.ID)
	}
}

// configChange waits for a configuration change and logs the outcome.
func (c *Cluster) configChange(what string, id raft.ServerID, f raft.IndexFuture) bool {
	if err := f.Error(); err != nil {
		c.logger.Warn("raft configuration change failed", "change", what, "server", id, "error", err)
		metrics.IncrCounter([]string{"cluster", "autopilot", "failed"}, 1)
		return false
	}
	c.logger.Info("raft configuration changed", "change", what, "server", id)
	metrics.IncrCounter([]string{"cluster", "autopilot", "changes"}, 1)
	return true
}

// sameTiming reports whether member e runs this node's raft timing. It logs
// a mismatch, which breaks the fencing argument, at most once per member
// and fingerprint.
func (c *Cluster) sameTiming(e memberEntry) bool {
	if e.report.Timing == c.timing.Fingerprint() {
		return true
	}
	c.timingWarnMu.Lock()
	defer c.timingWarnMu.Unlock()
	if c.timingWarned[e.name] != e.report.Timing {
		c.timingWarned[e.name] = e.report.Timing
		metrics.IncrCounter([]string{"cluster", "timing_mismatch"}, 1)
		c.logger.Error("member runs a different raft timing profile; it is kept out of raft",
			"member", e.name, "fingerprint", e.report.Timing, "ours", c.timing.Fingerprint())
	}
	return false
}
