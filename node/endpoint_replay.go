package node

import "time"

// handoffReplays remembers the MACs of the handoffs an endpoint relayed, so
// that a handoff captured on the wire and sent again is never relayed twice
// (each one carries a probe's own transaction ID, so a fresh one never
// repeats). A handoff is relayed only within handoffMaxAge seconds of being
// sealed; two generations of at least that span cover that window. Only
// handoffs whose MAC verified are remembered, so a stranger cannot fill it;
// a full generation (more handoffs than the cap within one span) refuses
// further handoffs rather than forget one it may see again.
//
// It is owned by the endpoint's read loop and needs no lock.
type handoffReplays struct {
	cur, prev map[[16]byte]struct{}
	rotated   time.Time
	span      time.Duration
	max       int
}

// maxHandoffReplays bounds each generation: 65,536 handoffs in 6 s is over
// 10,000 redirects a second sent through one server.
const maxHandoffReplays = 1 << 16

func newHandoffReplays(span time.Duration, max int) *handoffReplays {
	return &handoffReplays{cur: map[[16]byte]struct{}{}, prev: map[[16]byte]struct{}{}, span: span, max: max}
}

// admit reports whether the handoff with this MAC may be relayed at now,
// and remembers it if so.
func (h *handoffReplays) admit(mac []byte, now time.Time) bool {
	if now.Sub(h.rotated) >= h.span {
		h.prev, h.cur = h.cur, h.prev
		clear(h.cur)
		h.rotated = now
	}
	k := [16]byte(mac[:16])
	if _, ok := h.cur[k]; ok {
		return false
	}
	if _, ok := h.prev[k]; ok {
		return false
	}
	if len(h.cur) >= h.max {
		return false
	}
	h.cur[k] = struct{}{}
	return true
}
