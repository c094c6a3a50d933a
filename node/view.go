package node

import (
	"time"

	"github.com/usherlb/usher/assign"
)

// ViewSource supplies the nodes the responder assigns sessions to. The
// agent's is farmView: the gossiped members, with the farm's agreed drains
// and capacity overrides applied.
type ViewSource interface {
	// Nodes returns every known node's load report as of now. The caller
	// owns the slice.
	Nodes(now time.Time) []assign.Node
}
