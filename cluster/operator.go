package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Peer is one server of the Raft configuration, as `usher raft list-peers`
// shows it.
type Peer struct {
	// ID is the server's node name.
	ID string `json:"id"`
	// Address is its Raft address.
	Address string `json:"address"`
	// Voter says it votes; a standby follows the log without a vote.
	Voter bool `json:"voter"`
	// Leader says it leads, as this node knows.
	Leader bool `json:"leader"`
}

// ErrNotPeer is returned by RemovePeer for a server that is not in the Raft
// configuration.
var ErrNotPeer = errors.New("not a server of the raft configuration")

// ErrMemberAlive is returned by ForceLeave for a member the failure
// detector still sees alive: it should leave by itself (usher leave).
var ErrMemberAlive = errors.New("the member is alive: make it leave with usher leave")

// RaftPeers returns the servers of the Raft configuration as this node
// knows it (the latest, committed or not), in the configuration's order.
func (c *Cluster) RaftPeers() ([]Peer, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}
	_, leader := c.raft.LeaderWithID()
	servers := f.Configuration().Servers
	peers := make([]Peer, 0, len(servers))
	for _, s := range servers {
		peers = append(peers, Peer{
			ID:      string(s.ID),
			Address: string(s.Address),
			Voter:   s.Suffrage == raft.Voter,
			Leader:  s.ID == leader,
		})
	}
	return peers, nil
}

// RemovePeer removes the server id from the Raft configuration, as an
// operator does for a server that is gone for good. It runs on the leader
// (elsewhere it returns a *NotLeaderError) and refuses the leader itself,
// which should leave instead (usher leave) so that leadership moves first.
// Removing a voter lowers the number of failures the farm survives until
// maintenance promotes a standby in its place.
func (c *Cluster) RemovePeer(id string) error {
	if c.raft.State() != raft.Leader {
		return c.notLeader()
	}
	if id == c.cfg.NodeName {
		return fmt.Errorf("remove peer %q: it is the leader: make it leave with usher leave", id)
	}
	peers, err := c.RaftPeers()
	if err != nil {
		return err
	}
	found := false
	for _, p := range peers {
		found = found || p.ID == id
	}
	if !found {
		return fmt.Errorf("remove peer %q: %w", id, ErrNotPeer)
	}
	if err := c.raft.RemoveServer(raft.ServerID(id), 0, raftOpTimeout).Error(); err != nil {
		return fmt.Errorf("remove peer %q: %w", id, err)
	}
	c.logger.Info("raft configuration changed", "change", "removed by the operator", "server", id)
	return nil
}

// ForceLeave makes a member that the failure detector found dead count as
// left, as if it had left gracefully: the leader's maintenance takes it
// out of the Raft configuration at once instead of waiting to replace it,
// and the member list forgets it when left members are pruned. It runs on
// the leader (elsewhere it returns a *NotLeaderError) and refuses a member
// that is alive or suspect (ErrMemberAlive): a running agent leaves by
// itself. If the member comes back, the failure detector sees it alive
// again and it rejoins.
func (c *Cluster) ForceLeave(name string) error {
	if c.raft.State() != raft.Leader {
		return c.notLeader()
	}
	if !c.members.forceLeft(name) {
		if _, ok := c.members.lookup(name); !ok {
			return fmt.Errorf("force-leave %q: not a known member", name)
		}
		return fmt.Errorf("force-leave %q: %w", name, ErrMemberAlive)
	}
	c.logger.Info("member forced to leave by the operator", "member", name)
	c.notifyUpdate()
	if err := c.RemovePeer(name); err != nil && !errors.Is(err, ErrNotPeer) {
		return err
	}
	return nil
}
