package cluster

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestOperatorPeers lists, removes and force-leaves Raft peers as an
// operator would: the commands run on the leader only, refuse what would
// hurt (the leader itself, a member that is alive, a server that is not
// one), and a dead voter forced to leave is out of the Raft configuration
// and counts as left.
func TestOperatorPeers(t *testing.T) {
	nodes := startFarm(t, 3, 3, nil)
	leader := waitSingleServer(t, nodes, 20*time.Second)
	eventually(t, 10*time.Second, "three raft peers", func() bool {
		p, err := leader.RaftPeers()
		return err == nil && len(p) == 3
	})
	peers, _ := leader.RaftPeers()
	for _, p := range peers {
		if !p.Voter || p.Leader != (p.ID == leader.cfg.NodeName) || p.Address == "" {
			t.Errorf("peer %+v: want a voter with an address, leader only if %s", p, leader.cfg.NodeName)
		}
	}
	followers := without(nodes, leader)
	victim, other := followers[0], followers[1]
	name := victim.cfg.NodeName

	var nl *NotLeaderError
	if err := other.ForceLeave(name); !errors.As(err, &nl) {
		t.Errorf("ForceLeave on a follower: %v, want a NotLeaderError", err)
	}
	if err := other.RemovePeer(name); !errors.As(err, &nl) {
		t.Errorf("RemovePeer on a follower: %v, want a NotLeaderError", err)
	}
	if err := leader.ForceLeave(name); !errors.Is(err, ErrMemberAlive) {
		t.Errorf("ForceLeave of a live member: %v, want ErrMemberAlive", err)
	}
	if err := leader.ForceLeave("ghost"); err == nil {
		t.Error("ForceLeave of an unknown member succeeded")
	}
	if err := leader.RemovePeer("ghost"); !errors.Is(err, ErrNotPeer) {
		t.Errorf("RemovePeer of an unknown server: %v, want ErrNotPeer", err)
	}
	if err := leader.RemovePeer(leader.cfg.NodeName); err == nil {
		t.Error("RemovePeer of the leader itself succeeded")
	}

	victim.crash()
	eventually(t, 10*time.Second, name+" dead in the leader's view", func() bool {
		m, ok := member(leader, name)
		return ok && m.Status == Dead
	})
	if err := leader.ForceLeave(name); err != nil {
		t.Fatalf("ForceLeave of a dead member: %v", err)
	}
	peers, err := leader.RaftPeers()
	if err != nil || slices.ContainsFunc(peers, func(p Peer) bool { return p.ID == name }) {
		t.Errorf("after ForceLeave, raft peers %+v (%v) still hold %s", peers, err, name)
	}
	if m, ok := member(leader, name); ok && m.Status != Left {
		t.Errorf("after ForceLeave, %s is %v, want left", name, m.Status)
	}
	if _, ok := leader.Serving(); !ok {
		t.Error("the leader stopped serving after the force-leave")
	}
}

// TestStopKeepsSeat stops voters without leaving (leave_on_terminate =
// false): a stopped follower is found dead, not left, and keeps its seat
// in the Raft configuration; a stopped leader hands leadership on first,
// and keeps its seat too.
func TestStopKeepsSeat(t *testing.T) {
	nodes := startFarm(t, 3, 3, nil)
	leader := waitSingleServer(t, nodes, 20*time.Second)
	eventually(t, 10*time.Second, "three raft peers", func() bool {
		p, err := leader.RaftPeers()
		return err == nil && len(p) == 3
	})
	stopped := leader
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := stopped.Shutdown(); err != nil {
		t.Errorf("Shutdown after Stop: %v", err)
	}
	rest := without(nodes, stopped)
	next := waitSingleServer(t, rest, 5*time.Second)
	name := stopped.cfg.NodeName
	eventually(t, 10*time.Second, name+" dead, not left, in the new leader's view", func() bool {
		m, ok := member(next, name)
		return ok && m.Status == Dead
	})
	// Longer than the maintenance takes to remove a left server.
	time.Sleep(time.Second)
	peers, err := next.RaftPeers()
	if err != nil || !slices.ContainsFunc(peers, func(p Peer) bool { return p.ID == name && p.Voter }) {
		t.Errorf("after Stop, raft peers %+v (%v) no longer hold %s as a voter", peers, err, name)
	}
	if m, _ := member(next, name); m.Status != Dead {
		t.Errorf("%s is %v, want dead", name, m.Status)
	}
}
