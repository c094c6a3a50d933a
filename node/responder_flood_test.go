package node

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/usherlb/usher/assign"
	"github.com/usherlb/usher/wire"
)

// TestResponderFloodLeavesProbes is the pending ledger attack through the
// responder: one source sends 10,000 requests, far more than the farm's
// 300 seats, at one instant (so no pending entry expires), and none of its
// clients ever reaches a server. Every request is still answered, and so is
// the Usher probe of a real client that comes after. Stock Allocates book
// no more than each node's stock share of the ledger, so they leave every
// node's capacity to ticketed clients; the stranger's Usher probes book
// fully, but pending entries alone never make the farm refuse.
func TestResponderFloodLeavesProbes(t *testing.T) {
	const capacity = 100
	tests := []struct {
		name       string
		flood      func(i int) []byte
		maxPending int // per node
	}{
		{"stock TURN Allocate", func(int) []byte { return stockAllocate() }, 13}, // assign.DefaultStockShare: ceil(100/8)
		{"Usher probe", func(i int) []byte {
			return probe(t, wire.Probe{Session: wire.SessionID{0xf1, byte(i >> 8), byte(i)}, PadTo: wire.ProbeSize})
		}, capacity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			r := testResponder(clk, Solo)
			var nodes []assign.Node
			for i, s := range []string{"198.51.100.1:3479", "198.51.100.2:3479", "198.51.100.3:3479"} {
				nodes = append(nodes, assign.Node{ID: fmt.Sprint(i), Addr: netip.MustParseAddrPort(s), Capacity: capacity, ReportedAt: clk.Now()})
			}
			r.cfg.View.Store(assign.NewView(nodes))
			for i := range 10000 {
				if _, why := r.answer(nil, tt.flood(i), clientA); why != dropNone {
					t.Fatalf("flood request %d: %v", i, why)
				}
			}
			for _, n := range nodes {
				if got := r.prober.asg.Pending(n.ID); got > tt.maxPending {
					t.Errorf("node %s: %d pending entries after the flood, want at most %d", n.ID, got, tt.maxPending)
				}
			}
			out, why := r.answer(nil, probe(t, wire.Probe{Session: wire.SessionID{7}, PadTo: wire.ProbeSize}), clientB)
			if why != dropNone {
				t.Fatalf("a real client's probe after the flood: %v", why)
			}
			if a := decode(t, out); a.Code != stun.CodeTryAlternate || len(a.Ticket) != wire.TicketLen {
				t.Errorf("a real client's probe after the flood: %+v", a)
			}
		})
	}
}
