package node

import (
	"time"

	"github.com/usherlb/usher/assign"
)

// ViewSource supplies the nodes the responder assigns sessions to. A single
// node reports only itself (see localView); a cluster reports the gossiped
// members instead.
type ViewSource interface {
	// Nodes returns every known node's load report as of now. The caller
	// owns the slice.
	Nodes(now time.Time) []assign.Node
}

// localView is the ViewSource of a node that is its own farm: its own
// session endpoint's load, read afresh each time.
type localView struct {
	id       string
	capacity int
	ep       *Endpoint
}

// Nodes returns this node's report.
func (l *localView) Nodes(now time.Time) []assign.Node {
	sessions, accepted := l.ep.Load()
	return []assign.Node{{
		ID:         l.id,
		Addr:       l.ep.Addr(),
		Capacity:   l.capacity,
		Sessions:   sessions,
		Accepted:   accepted,
		Draining:   l.ep.Draining(),
		ReportedAt: now,
	}}
}
