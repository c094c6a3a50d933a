package assign

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// SessionID is the 8-byte session identifier a client chooses and sends in
// the USHER-SESSION attribute. The Sticky policy hashes it.
type SessionID [8]byte

// Node is one server's load report as the leader sees it.
type Node struct {
	// ID is the node's name, unique within the farm.
	ID string
	// Addr is the node's session endpoint: the address clients are
	// redirected to. A node without a valid Addr is never assigned.
	Addr netip.AddrPort
	// Addr6 is the node's IPv6 session address when Addr is an IPv4 one
	// and the node is reachable on both families (a dual-stack service);
	// zero otherwise. A client is sent the address of its own family
	// (see AddrFor).
	Addr6 netip.AddrPort
	// Domain is the node's DNS name for the service, the name its TLS
	// certificate carries; empty for none. The Assigner does not read it:
	// it rides along so that the picked Node names it (ALTERNATE-DOMAIN).
	Domain string
	// Capacity is the most sessions the node takes; zero or less means the
	// node is not accepting.
	Capacity int
	// Sessions is the number of active sessions in the node's last report.
	Sessions int
	// Accepted is a monotonic count of the sessions the node has ever
	// accepted. The Assigner reconciles its pending ledger from it.
	Accepted uint64
	// Draining is set when the operator drains the node: it keeps its
	// sessions but gets no new ones.
	Draining bool
	// Suspect is set when membership considers the node suspect or dead.
	Suspect bool
	// Starting is set when the node says it cannot take sessions yet (it
	// has just started). It is never eligible, and, like a node whose
	// report is stale, it tells nothing of whether the farm could take a
	// session (see ErrNoReport).
	Starting bool
	// ReportedAt is when the report was produced, translated to the
	// leader's clock (or, failing that, when the leader received it).
	// Config.StaleAfter is measured from it, and a new Assigner's warm-up
	// ends when every node has a report produced after the Assigner was
	// created (see Assigner.Warm).
	ReportedAt time.Time
}

// AddrFor returns the node's address a client of family f can reach: Addr,
// or Addr6 for an IPv6 client of a dual-stack node, or the zero AddrPort
// when the node has none of f. AnyFamily gets Addr.
func (n *Node) AddrFor(f Family) netip.AddrPort {
	switch {
	case f == AnyFamily || FamilyOf(n.Addr.Addr()) == f:
		return n.Addr
	case f == IPv6 && n.Addr6.IsValid():
		return n.Addr6
	}
	return netip.AddrPort{}
}

// families returns the bit set (1<<Family) of the families n can be
// reached on.
func (n *Node) families() uint8 {
	var m uint8
	if n.Addr.IsValid() {
		m |= 1 << FamilyOf(n.Addr.Addr())
		if n.Addr6.IsValid() && FamilyOf(n.Addr6.Addr()) == IPv6 {
			m |= 1 << IPv6
		}
	}
	return m
}

// View is an immutable snapshot of the farm: the nodes sorted by ID. Build
// it with [NewView]; once built it is safe to share between goroutines. A nil
// *View is an empty view.
type View struct {
	nodes []Node // sorted by ID, IDs unique
}

// NewView builds a view from a copy of nodes, sorted by ID. The caller may
// reuse nodes afterwards. IDs should be unique; if one repeats, the entry
// that comes last in nodes wins.
func NewView(nodes []Node) *View {
	ns := slices.Clone(nodes)
	slices.SortStableFunc(ns, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	out := ns[:0]
	for i := range ns {
		if i+1 < len(ns) && ns[i+1].ID == ns[i].ID {
			continue // a later duplicate overrides this one
		}
		out = append(out, ns[i])
	}
	clear(ns[len(out):])
	return &View{nodes: out}
}

// Nodes returns the nodes of the view, sorted by ID. The slice is shared
// with the view, which is immutable: callers must not modify it.
func (v *View) Nodes() []Node {
	if v == nil {
		return nil
	}
	return v.nodes
}

// Len returns the number of nodes in the view.
func (v *View) Len() int {
	if v == nil {
		return 0
	}
	return len(v.nodes)
}

// Lookup returns the node with the given ID and whether it is in the view.
func (v *View) Lookup(id string) (Node, bool) {
	i, ok := v.index(id)
	if !ok {
		return Node{}, false
	}
	return v.nodes[i], true
}

// index finds id by binary search.
func (v *View) index(id string) (int, bool) {
	if v == nil {
		return 0, false
	}
	return slices.BinarySearchFunc(v.nodes, id, func(n Node, id string) int { return cmp.Compare(n.ID, id) })
}
