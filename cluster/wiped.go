package cluster

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// A voter whose data directory was wiped (or replaced by an empty one)
// starts without raft state: it has forgotten the term, its vote and the
// entries it acknowledged. Left alone, Raft would catch it up from the
// leader and count it as a voter again, and in the meantime it would grant
// any vote it is asked for, possibly a second one in a term it already
// voted in. So:
//
//   - A node reports Bootstrapped only once its raft state is verified:
//     found on disk at start, created by its own bootstrap or a peers file,
//     or, for a node that started empty, once the leader's state message
//     has shown it outside the raft configuration (a new node, or one that
//     was removed before it was started empty).
//   - Every node in the raft configuration remembers which voters it has
//     seen report raft state (maintenance.hadState). A leader that sees
//     such a voter report none any more logs an error and sends it a state
//     message naming it among the voters.
//   - A node that started empty and receives a state message naming it
//     among the voters stops: Failed is closed, Err returns an error
//     wrapping ErrWipedVoter that names the recovery, and raft is shut down
//     so the node neither votes nor follows.
//
// The leader also never moves a voter to a raft address that a node
// without verified raft state reports, and without TLS never moves a voter
// at all (see voterMayMove).
//
//   - A node that started empty and received from the leader a raft
//     configuration naming it (a member of the initial bootstrap that the
//     leader reached before it bootstrapped itself) vouches for its state
//     once seatGrace has passed without the leader telling it it was
//     wiped: the leader had that long to see it report no state.
//
// The leader's memory is the weak spot: a voter wiped while every other
// voter restarted is not recognized.

// recoverWiped tells the operator how to bring a wiped voter back.
const recoverWiped = "to recover, keep this agent stopped until the leader has removed it from the raft configuration " +
	"('usher members' no longer shows it as a voter: the leader replaces a voter dead for three probe intervals when a standby " +
	"can take its place; without one, recover the other voters with " + PeersFile + "), then start it with the empty data_dir; " +
	"or restore its data_dir from a backup"

// Failed returns a channel that is closed when the node has stopped for
// good while running (its raft state turned out to be unusable; Err says
// why). The owner should shut the node down and exit with Err.
func (c *Cluster) Failed() <-chan struct{} { return c.failed }

// Err returns the reason Failed was closed, or nil while it is open.
func (c *Cluster) Err() error {
	select {
	case <-c.failed:
		return c.failErr
	default:
		return nil
	}
}

// fail stops raft for good and closes Failed with err.
func (c *Cluster) fail(err error) {
	c.failOnce.Do(func() {
		c.logger.Error("stopping raft for good", "error", err)
		metrics.IncrCounter([]string{"cluster", "failed"}, 1)
		if serr := c.stopRaft(); serr != nil {
			c.logger.Warn("raft shutdown", "error", serr)
		}
		c.failErr = err
		close(c.failed)
		c.notifyUpdate()
	})
}

// verifiedState reports whether this node has raft state that it may vouch
// for in its reports (see the comment at the top of this file).
func (c *Cluster) verifiedState() bool {
	return c.bootstrapped.Load() && c.verified.Load()
}

// checkWiped runs on a node that started without raft state until its
// state is verified: the leader's state message says whether the farm
// lists it as a voter.
func (c *Cluster) checkWiped() {
	d := c.delivered.Load()
	if d == nil {
		return
	}
	if slices.Contains(d.voters, c.cfg.NodeName) {
		c.fail(fmt.Errorf("%w: node %s started with an empty data_dir (%s) but the leader %s (term %d) lists it among the voters %v; %s",
			ErrWipedVoter, c.cfg.NodeName, c.cfg.DataDir, d.leader, d.term, d.voters, recoverWiped))
		return
	}
	c.verified.Store(true)
	c.logger.Info("the leader's state message shows this node outside the raft configuration: its empty raft state is genuine", "leader", d.leader)
}

// seatGrace is how long a node that started empty and was given raft state
// by the leader waits before it reports that state as its own: several
// rounds of the leader's maintenance and state messages, in which a leader
// that remembers it as a voter with state tells it it was wiped.
const seatGrace = 3*stateResend + 2*time.Second

// checkSeated runs on a node that started without raft state until its
// state is verified: raft state received from the leader, in a
// configuration naming this node, is verified after seatGrace.
func (c *Cluster) checkSeated(m *maintenance, servers []raft.Server) {
	named := slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == c.cfg.NodeName })
	if !named || !c.bootstrapped.Load() {
		m.seatedAt = time.Time{}
		return
	}
	now := time.Now()
	if m.seatedAt.IsZero() {
		m.seatedAt = now
		return
	}
	if now.Sub(m.seatedAt) >= seatGrace {
		c.verified.Store(true)
		c.logger.Info("raft state received from the leader, and the leader did not call this node wiped: its state is its own", "after", seatGrace)
	}
}

// recordState remembers, on every node of the raft configuration, which
// voters have reported raft state, and forgets servers that left it.
func (m *maintenance) recordState(servers []raft.Server, entries map[raft.ServerID]memberEntry) {
	if m.hadState == nil {
		m.hadState = map[raft.ServerID]bool{}
	}
	voters := map[raft.ServerID]bool{}
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters[s.ID] = true
		if e, ok := entries[s.ID]; ok && e.status == Alive && e.report.Bootstrapped {
			m.hadState[s.ID] = true
		}
	}
	for id := range m.hadState {
		if !voters[id] {
			delete(m.hadState, id)
		}
	}
}

// noticeWiped runs on the leader: a voter that reported raft state before
// and reports none now lost its data directory. The leader logs it and
// sends the node a state message naming it among the voters, which stops
// it (checkWiped), every stateResend while it stays.
func (c *Cluster) noticeWiped(m *maintenance, servers []raft.Server, entries map[raft.ServerID]memberEntry) {
	if m.wipedSent == nil {
		m.wipedSent = map[raft.ServerID]time.Time{}
	}
	var voters []string
	for _, s := range servers {
		if s.Suffrage == raft.Voter && len(voters) < maxStateVoters {
			voters = append(voters, string(s.ID))
		}
	}
	now := time.Now()
	for _, s := range servers {
		e, ok := entries[s.ID]
		if s.Suffrage != raft.Voter || string(s.ID) == c.cfg.NodeName || !m.hadState[s.ID] ||
			!ok || e.status != Alive || e.report.Bootstrapped || !e.gossip.IsValid() {
			delete(m.wipedSent, s.ID)
			continue
		}
		last, sent := m.wipedSent[s.ID]
		if sent && now.Sub(last) < stateResend {
			continue
		}
		if !sent {
			metrics.IncrCounter([]string{"cluster", "wiped_voters"}, 1)
			c.logger.Error("a voter reports no raft state any more: its data_dir was lost; it is told to stop, "+
				"remove it from the raft configuration before it starts again empty", "voter", s.ID, "raft_addr", e.report.RaftAddr)
		}
		var err error
		if m.stateMsg, err = c.encodeStateMsg(m.stateMsg[:0], e.name, c.fsm.state.Load(), voters, c.raft.CurrentTerm()); err != nil {
			if !errors.Is(err, errUnknownKey) {
				c.logger.Error("encoding a state message", "member", e.name, "error", err)
			}
			continue
		}
		n := memberlist.Node{Name: e.name, Addr: e.gossip.Addr().AsSlice(), Port: e.gossip.Port()}
		if err := c.ml.SendBestEffort(&n, m.stateMsg); err != nil {
			c.logger.Debug("telling a wiped voter", "to", e.name, "error", err)
			continue
		}
		m.wipedSent[s.ID] = now
	}
}

// voterMayMove decides, on the leader, whether voter s may follow the new
// raft address that member e reports. With TLS the raft dial checks that
// the certificate at the new address names the voter, so the move is kept
// when the node there has verified raft state; a node there without it is
// a wiped voter (noticeWiped stops it). Without TLS nothing proves that
// the node at the new address is the voter, so the leader never moves it
// and logs the recovery instead.
func (c *Cluster) voterMayMove(m *maintenance, s raft.Server, e memberEntry) bool {
	addr := raft.ServerAddress(e.report.RaftAddr)
	ok := c.cfg.TLS != nil && e.report.Bootstrapped
	if ok || m.moveRefused[s.ID] == addr {
		return ok
	}
	if m.moveRefused == nil {
		m.moveRefused = map[raft.ServerID]raft.ServerAddress{}
	}
	m.moveRefused[s.ID] = addr
	metrics.IncrCounter([]string{"cluster", "voter_move_refused"}, 1)
	if c.cfg.TLS == nil {
		c.logger.Error("a voter's name arrives from a new raft address; without TLS nothing proves it is the same node, so the voter stays at its old address. "+
			"If the node really moved, run 'usher leave' against it and restart it: it rejoins at the new address",
			"voter", s.ID, "configured", s.Address, "reported", addr)
		return false
	}
	c.logger.Error("a voter's name arrives from a new raft address without raft state; the voter stays at its old address",
		"voter", s.ID, "configured", s.Address, "reported", addr)
	return false
}
