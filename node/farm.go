package node

import (
	"net/netip"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/cluster"
)

// farmView supplies the nodes the responder assigns sessions to: every
// member's gossiped load report, with the farm's agreed drains and capacity
// overrides applied. A member that is not alive, or whose session endpoint
// the leader found silent after a client reported it lost, is marked
// suspect, so it is never assigned; a member that has not reported a
// session address yet is left out.
type farmView struct {
	c *cluster.Cluster
	// excluded reports a server that a client reported lost and the
	// leader's own check confirmed silent; nil excludes none.
	excluded func(netip.AddrPort) bool
}

// Nodes returns the farm as this node sees it now.
func (f *farmView) Nodes() []assign.Node {
	st := f.c.State()
	members := f.c.Members()
	nodes := make([]assign.Node, 0, len(members))
	for _, m := range members {
		r := m.Report
		if !r.Service.IsValid() || m.Status == cluster.Left {
			continue
		}
		capacity := int(r.Capacity)
		if c, ok := st.Capacity[m.Name]; ok {
			capacity = int(c)
		}
		nodes = append(nodes, assign.Node{
			ID:         m.Name,
			Addr:       r.Service,
			Capacity:   capacity,
			Sessions:   int(r.Sessions),
			Accepted:   r.Accepted,
			Draining:   r.Draining || st.Drained[m.Name],
			Suspect:    m.Status != cluster.Alive || f.excluded != nil && f.excluded(r.Service),
			ReportedAt: m.ReportedAt,
		})
	}
	return nodes
}
