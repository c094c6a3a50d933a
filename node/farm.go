package node

import (
	"net/netip"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/cluster"
)

// farmView supplies the nodes the responder assigns sessions to: every
// member's gossiped load report, with the farm's agreed drains and capacity
// overrides applied. A member that is not alive, that led before this node
// took over and has not reported since (cluster.Member.AwaitingReport), or
// whose session endpoint the leader found silent after a client reported
// it lost, is marked suspect, so it is never assigned; a member that has not reported a
// session address yet is left out.
type farmView struct {
	c *cluster.Cluster
	// excluded reports a server that a client reported lost and the
	// leader's own check confirmed silent; nil excludes none.
	excluded func(netip.AddrPort) bool
}

// Nodes returns the farm's session endpoints as this node sees them now.
func (f *farmView) Nodes() []assign.Node {
	nodes, _ := f.views()
	return nodes
}

// views returns the farm's session endpoints and, by name, the nodes of
// each named service, as this node sees them now. A node takes no new
// sessions for a service it drains, whose health checks fail or whose
// load figure it cannot vouch for, nor for any service while the operator
// drains it or it is not alive.
func (f *farmView) views() ([]assign.Node, map[string][]assign.Node) {
	return farmNodes(f.c.State(), f.c.Members(), f.excluded)
}

// farmNodes is views over the agreed state st and the members, with the
// verifier's exclusions (nil: none).
func farmNodes(st cluster.State, members []cluster.Member, excluded func(netip.AddrPort) bool) ([]assign.Node, map[string][]assign.Node) {
	nodes := make([]assign.Node, 0, len(members))
	var named map[string][]assign.Node
	for _, m := range members {
		r := &m.Report
		if m.Status == cluster.Left {
			continue
		}
		drained := st.Drained[m.Name]
		suspect := m.Status != cluster.Alive || m.AwaitingReport
		for _, s := range r.Services {
			if named == nil {
				named = make(map[string][]assign.Node)
			}
			named[s.Name] = append(named[s.Name], assign.Node{
				ID:         m.Name,
				Addr:       s.Addr,
				Addr6:      s.Addr6,
				Domain:     s.Domain,
				Capacity:   int(s.Capacity),
				Sessions:   int(s.Sessions),
				Accepted:   s.Accepted,
				Draining:   drained || st.Drained[cluster.ServiceDrainKey(m.Name, s.Name)] || !s.Accepting(),
				Suspect:    suspect,
				ReportedAt: m.ReportedAt,
			})
		}
		if !r.Service.IsValid() {
			continue
		}
		capacity := int(r.Capacity)
		if c, ok := st.Capacity[m.Name]; ok {
			capacity = int(c)
		}
		nodes = append(nodes, assign.Node{
			ID:       m.Name,
			Addr:     r.Service,
			Capacity: capacity,
			Sessions: int(r.Sessions),
			Accepted: r.Accepted,
			Draining: drained,
			// A node drains itself, by its report, only until it holds
			// the farm's ticket key (see Agent.publish): it is starting.
			Starting:   r.Draining && !drained,
			Suspect:    suspect || excluded != nil && excluded(r.Service),
			ReportedAt: m.ReportedAt,
		})
	}
	return nodes, named
}
