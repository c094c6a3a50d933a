package assign

import (
	"maps"
	"net/netip"
	"testing"
)

// TestTakePicks checks the per-node pick counts: they add up to the picks,
// TakePicks starts them again from zero, they survive a new view for the
// nodes that stay, and a node that left takes its count with it.
func TestTakePicks(t *testing.T) {
	c := newFakeClock()
	nodes := equalNodes(c, 3, 1000)
	a := newTestAssigner(Config{Policy: RoundRobin}, c, 1, nodes)
	take := func() map[string]uint64 {
		got := map[string]uint64{}
		a.TakePicks(func(id string, n uint64) { got[id] += n })
		return got
	}
	pick := func(k int) {
		for i := range k {
			if _, err := a.Pick(sid(uint64(i)), netip.AddrPort{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	pick(7) // round robin: n00 n01 n02 n00 n01 n02 n00
	if got, want := take(), map[string]uint64{"n00": 3, "n01": 2, "n02": 2}; !maps.Equal(got, want) {
		t.Errorf("first take %v, want %v", got, want)
	}
	if got := take(); len(got) != 0 {
		t.Errorf("second take %v, want nothing", got)
	}

	pick(3)                       // n01 n02 n00
	a.SetView(NewView(nodes[1:])) // n00 leaves
	pick(2)                       // n01 n02
	if got, want := take(), map[string]uint64{"n01": 2, "n02": 2}; !maps.Equal(got, want) {
		t.Errorf("take after n00 left %v, want %v", got, want)
	}
}
